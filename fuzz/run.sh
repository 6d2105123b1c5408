#!/usr/bin/env bash
# Fuzz Tapio's decoders of untrusted input with libFuzzer (cargo-fuzz), each target for a
# bounded time. A crash (panic, failed assertion, out-of-memory, timeout) fails the run;
# libFuzzer leaves the input in fuzz/artifacts/TARGET/ — add it to fuzz/regressions/TARGET/
# (replayed at the start of every run) and fix the decoder.
#
#   fuzz/run.sh              # 60 s per target
#   fuzz/run.sh 300          # 5 minutes per target
#   fuzz/run.sh 30 rule_file # one target
#   FUZZ_SEED=0 fuzz/run.sh 600   # a random seed: hunt beyond what CI covers
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(evidence_envelope alertmanager_webhook rule_file kernel_record)

if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "--- installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
# cargo-fuzz wants a nightly compiler; without one installed, the stable one is allowed its
# unstable flags (the machine has one toolchain and no way to fetch another).
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
    fuzz=(cargo +nightly fuzz)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
fi
# No sanitizer: the targets are safe Rust, so ASan would find nothing the Rust checks do not,
# and it doubles the build. Panics and assertions abort like crashes.
opts=(--sanitizer none -O)
"${fuzz[@]}" build "${opts[@]}"

# A fixed seed by default: a run explores the same inputs in the same order on any machine
# (as far as its time allows), so CI is red only for a change of the code, never for luck.
# FUZZ_SEED=0 lets libFuzzer pick one (for longer local hunts).
seed="${FUZZ_SEED:-1}"
# With the fixed seed, also at most as many inputs as were checked clean before committing
# (about 60 s each here), so a faster machine cannot wander past them.
declare -A runs=([evidence_envelope]=6000000 [alertmanager_webhook]=5500000 [rule_file]=2000000 [kernel_record]=1600000)
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "regressions/$t"
    echo "--- fuzz $t for ${secs}s"
    # Corpus dirs: the first collects new inputs; the seeds and the regressions are read.
    if ! "${fuzz[@]}" run "${opts[@]}" "$t" "corpus/$t" "seeds/$t" "regressions/$t" -- \
        -seed="$seed" $([ "$seed" = 1 ] && echo "-runs=${runs[$t]:--1}") -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 -timeout=10 \
        -print_final_stats=1 2>"corpus/$t.log"; then
        status=1
        tail -50 "corpus/$t.log"
        echo "!!! fuzz target $t failed: crashing input in fuzz/artifacts/$t/"
    fi
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|Done [0-9]+ runs" "corpus/$t.log" || true
done
exit $status
