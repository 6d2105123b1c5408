#!/usr/bin/env bash
# Builds the BPF objects from source and records the hash of the sources they came from.
#
#   bpf/build.sh          rebuild bpf/obj/*.bpf.o and bpf/obj/SOURCES.sha256
#   bpf/build.sh --check  rebuild into a temporary directory and fail when the committed
#                         objects or their recorded source hash are stale (CI runs this)
#
# The objects are committed so a machine without clang still builds and runs the agent.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
CLANG="${CLANG:-clang}"
ARCH_INC="/usr/include/$(uname -m)-linux-gnu"
CFLAGS=(-O2 -g -target bpf -D__TARGET_ARCH_x86 -I. -I"$ARCH_INC" -Wall -Werror -fno-ident -fdebug-prefix-map="$here"=bpf)
OBJS=(net proc block)

source_hash() {
    # Sources and flags, in a fixed order; the hash is recorded next to the objects.
    { for f in tapio_abi.h kernel_types.h common.h "${OBJS[@]/%/.bpf.c}" build.sh; do
          printf '%s\n' "$f"; cat "$f"; done; } | sha256sum | cut -d' ' -f1
}

out="obj"
if [ "${1:-}" = "--check" ]; then
    out="$(mktemp -d)"
    trap 'rm -rf "$out"' EXIT
fi
for o in "${OBJS[@]}"; do
    "$CLANG" "${CFLAGS[@]}" -c "$o.bpf.c" -o "$out/$o.bpf.o"
    # Drop DWARF (BTF stays): smaller objects, no build-path differences.
    llvm-strip -g "$out/$o.bpf.o" 2>/dev/null || llvm-strip-14 -g "$out/$o.bpf.o"
done
echo "$(source_hash)" > "$out/SOURCES.sha256"

if [ "${1:-}" = "--check" ]; then
    status=0
    if ! cmp -s "$out/SOURCES.sha256" obj/SOURCES.sha256; then
        echo "stale: bpf/obj/SOURCES.sha256 does not match the BPF sources; run crates/tapio-agent/bpf/build.sh and commit" >&2
        status=1
    fi
    for o in "${OBJS[@]}"; do
        if ! cmp -s "$out/$o.bpf.o" "obj/$o.bpf.o"; then
            echo "stale: bpf/obj/$o.bpf.o differs from a fresh build of $o.bpf.c; run crates/tapio-agent/bpf/build.sh and commit" >&2
            status=1
        fi
    done
    [ $status -eq 0 ] && echo "BPF objects are up to date with their sources"
    exit $status
fi
ls -l obj/
