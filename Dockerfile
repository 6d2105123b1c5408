# syntax=docker/dockerfile:1
#
# Tapio's image: tapio-server, tapio-agent and the tapio CLI in one small Debian image.
#
#   docker build -t tapio:0.1.0 .
#
# The Deployment runs /usr/local/bin/tapio-server (the default entrypoint) as the non-root
# user 65532; the DaemonSet runs /usr/local/bin/tapio-agent as root with only the
# capabilities eBPF needs (deploy/kubernetes/50-agent.yaml). curl is included because the
# runbook checks the server from inside its pod:
#   kubectl exec -it deployment/tapio-server -n tapio-system -- curl http://localhost:8080/health
#   kubectl exec -it deployment/tapio-server -n tapio-system -- tapio check --timeout=30s
#
# No clang is needed: the agent's BPF objects are committed (crates/tapio-agent/bpf/obj) and
# embedded at compile time. SQLite is bundled (rusqlite) and built with the C compiler of
# the Rust image.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=trixie

FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p tapio-server -p tapio-agent -p tapio-cli \
    && mkdir -p /out \
    && cp target/release/tapio-server target/release/tapio-agent target/release/tapio /out/

FROM debian:${DEBIAN_RELEASE}-slim
ARG TAPIO_UID=65532
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${TAPIO_UID}" tapio \
    && useradd --system --uid "${TAPIO_UID}" --gid tapio --home-dir /var/lib/tapio \
        --no-create-home --shell /usr/sbin/nologin tapio \
    && mkdir -p /var/lib/tapio /etc/tapio/config /etc/tapio/auth /var/lib/tapio-agent/spool \
    && chown tapio:tapio /var/lib/tapio
COPY --from=build /out/tapio-server /out/tapio-agent /out/tapio /usr/local/bin/
LABEL org.opencontainers.image.title="tapio" \
      org.opencontainers.image.description="Kubernetes incident detection: tapio-server, tapio-agent, tapio" \
      org.opencontainers.image.licenses="Apache-2.0"
USER ${TAPIO_UID}:${TAPIO_UID}
WORKDIR /var/lib/tapio
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/tapio-server"]
