#!/usr/bin/env bash
# `make fuzz`: every fuzz target of fuzz/ for a bounded time, then executions per target; fails on a crash
# (docs/fuzzing.md).
#
#   needs a nightly toolchain (skips with a message without one) and cargo-fuzz (installed from crates.io
#   when missing) -> builds every target in one go -> runs each for FUZZ_SECONDS on a copy of its seed corpus
#   -> prints "target, executions, executions/s, result".
#
# Environment:
#   FUZZ_SECONDS     seconds per target (default: 30)
#   FUZZ_TARGETS     space-separated targets (default: all of `cargo fuzz list`)
#   FUZZ_SANITIZER   cargo-fuzz's -s (default: none; the parsers are safe Rust, and without ASan the build is
#                    faster and each target runs about twice as many inputs; "address" for unsafe code)
#   FUZZ_RSS_MB      libFuzzer's -rss_limit_mb (default: 2048)
#   FUZZ_STACK_KB    the fuzzing process's stack (default: 512). libFuzzer's inputs stay within 4 KiB, AWS takes
#                    rules of 256 KB and payloads of 128 KB: with a quarter of a tokio worker's 2 MiB, recursion
#                    per input byte shows up at the input sizes the fuzzer reaches (the rules SQL chains of
#                    issue 13 crash here at 2,000 links, within a 4 KiB input; AWS's 256 KB allow 128,000), while the
#                    bounded nesting (128 levels of rules SQL) fits; 256 KiB does not
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SECONDS_PER_TARGET="${FUZZ_SECONDS:-30}"
SANITIZER="${FUZZ_SANITIZER:-none}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
STACK_KB="${FUZZ_STACK_KB:-512}"
CARGO_FUZZ_VERSION=0.13.2
TARGET_DIR="$ROOT/fuzz/target"
WORK="$TARGET_DIR/corpus"
ARTIFACTS="$ROOT/fuzz/artifacts"

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "SKIPPED: make fuzz needs a nightly toolchain for cargo-fuzz's sanitizer coverage (rustup toolchain install nightly)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
    cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

started=$(date +%s)
cargo +nightly fuzz build -s "$SANITIZER" --target-dir "$TARGET_DIR"
built=$(date +%s)
echo "fuzz targets built in $((built - started)) s (cargo +nightly fuzz build -s $SANITIZER)"

host=$(rustc +nightly -vV | sed -n 's/^host: //p')
targets="${FUZZ_TARGETS:-$(cargo +nightly fuzz list)}"
summary=()
failed=()
for target in $targets; do
    binary="$TARGET_DIR/$host/release/$target"
    # libFuzzer adds what it finds to the first corpus directory: a scratch copy, so the committed seeds stay seeds.
    mkdir -p "$WORK/$target" "$ARTIFACTS/$target"
    log="$TARGET_DIR/$target.log"
    echo "=== $target: ${SECONDS_PER_TARGET}s"
    # What `cargo fuzz run` would run, on the smaller stack.
    if (ulimit -s "$STACK_KB" && exec "$binary" "$WORK/$target" "fuzz/corpus/$target" \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb="$RSS_MB" -timeout=10 \
        -artifact_prefix="$ARTIFACTS/$target/" -print_final_stats=1) >"$log" 2>&1; then
        result=ok
    else
        result=CRASH
        failed+=("$target")
        tail -n 40 "$log"
    fi
    executions=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    executions=${executions:-0}
    summary+=("$(printf '%-16s %12s %10s  %s' "$target" "$executions" "$((executions / SECONDS_PER_TARGET))" "$result")")
done

echo
printf '%-16s %12s %10s  %s\n' target executions "per s" result
printf '%s\n' "${summary[@]}"
echo "(${SECONDS_PER_TARGET} s per target, sanitizer $SANITIZER, $(nproc) cores; build $((built - started)) s, total $(($(date +%s) - started)) s)"
if ((${#failed[@]})); then
    echo "FUZZ FAILED: ${failed[*]} (crashing inputs in fuzz/artifacts/<target>/; reproduce with" \
        "cargo +nightly fuzz run -s $SANITIZER <target> <file>)"
    exit 1
fi
