#!/usr/bin/env bash
# Runs the fuzz targets without sanitizer (docs/fuzzing.md), as CI does:
# first the saved reproducers of fuzz/regressions/<target>/, then each target
# for SECONDS on a copy of its seed corpus in a temporary directory, so that
# the inputs a run adds never land in fuzz/corpus/. Every target runs even
# when one fails; any crash (a panic, a failed assertion, a timeout, running
# out of memory) or a saved reproducer that still fails makes the exit
# status 1. Crashing inputs are saved in fuzz/artifacts/<target>/.
#
#   fuzz/run.sh                        # every target, 60 seconds each
#   fuzz/run.sh 600 open_tokens        # one target, ten minutes
#   FUZZ_CORPUS_OUT=/tmp/c fuzz/run.sh # keep the grown corpora in /tmp/c/<target>
#   FUZZ_JOBS=2 fuzz/run.sh 3600       # libFuzzer -fork=2: two processes per target
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`); stable Rust is
# enough without a sanitizer. Builds go to fuzz/target.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

flags=(-s none -O)
cargo fuzz build "${flags[@]}"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failed=()
for target in "${targets[@]}"; do
  echo "fuzz: $target"
  regressions=(fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "fuzz: $target: replaying ${#regressions[@]} saved reproducer(s)"
    if ! cargo fuzz run "${flags[@]}" "$target" "${regressions[@]}" >"$work/$target.replay.log" 2>&1; then
      tail -n 60 "$work/$target.replay.log"
      echo "fuzz: $target: a saved reproducer still fails"
      failed+=("$target (reproducer)")
    fi
  fi
  corpus="${FUZZ_CORPUS_OUT:-$work}/$target"
  mkdir -p "$corpus"
  extra=()
  if [ -n "${FUZZ_JOBS:-}" ]; then
    extra+=("-fork=$FUZZ_JOBS")
  fi
  # New inputs go to the first directory only; the seeds are read.
  if cargo fuzz run "${flags[@]}" "$target" "$corpus" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 "${extra[@]}" >"$work/$target.log" 2>&1; then
    grep -E '^(Done|stat::(number_of_executed_units|average_exec_per_sec|new_units_added|peak_rss_mb))' \
      "$work/$target.log" | sed "s/^/fuzz: $target: /"
  else
    tail -n 80 "$work/$target.log"
    echo "fuzz: $target: FAILED (the input is in fuzz/artifacts/$target/)"
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failures: ${failed[*]}"
  exit 1
fi
echo "fuzz: ${#targets[@]} target(s), ${seconds}s each, no crash"
