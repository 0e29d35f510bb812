#!/usr/bin/env bash
# The micro-benchmark tables of docs/benchmarks.md as medians of interleaved
# rounds: each round runs benches/micro.rs, then josekit's benchmark in
# compat/ (its own workspace), each saved as criterion baseline
# `round-N`; scripts/bench-table.py --rounds then gives every time and ratio
# as the median of the rounds with its spread, and flags a target as met
# only when every round meets it. A busy moment of a shared machine falls on
# one round of every contender, not on one contender.
#
#   scripts/bench-micro.sh                         # 5 rounds, everything
#   MICRO_ROUNDS=3 scripts/bench-micro.sh 'jwe/open/2KiB'   # a subset
#
# Settings (environment): MICRO_ROUNDS (5), MICRO_WARMUP (0.5 s per
# benchmark and round), MICRO_MEASURE (1.5 s per benchmark and round),
# MICRO_FEATURES (rsa; "rsa,ring" measures the `ring` AES-GCM backend),
# MICRO_PREFIX (round: the baselines' names, so a second build's rounds
# are kept beside the first's). An argument is a criterion filter. Bounded: about
# 110 benchmarks × (warm-up + measurement) per round.
#
# The tables are printed and kept in $CARGO_TARGET_DIR/bench-micro-PREFIX.md
# (target/ by default); criterion's own output goes to bench-micro-PREFIX.log
# beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
# A relative CARGO_TARGET_DIR would name another directory for the
# benchmark run in compat/ (cargo runs it there): made absolute, both
# workspaces' results land where scripts/bench-table.py reads them.
if [ -n "${CARGO_TARGET_DIR:-}" ]; then
  CARGO_TARGET_DIR="$(realpath -m "$CARGO_TARGET_DIR")"
  export CARGO_TARGET_DIR
fi

rounds="${MICRO_ROUNDS:-5}"
warmup="${MICRO_WARMUP:-0.5}"
measure="${MICRO_MEASURE:-1.5}"
features="${MICRO_FEATURES:-rsa}"
prefix="${MICRO_PREFIX:-round}"
filter=("$@")
out="${CARGO_TARGET_DIR:-target}/bench-micro-$prefix.md"
log="${CARGO_TARGET_DIR:-target}/bench-micro-$prefix.log"
: > "$log"

cargo bench --bench micro --features "$features" --no-run 2>&1 | tail -n 1
cargo bench --manifest-path compat/Cargo.toml --bench josekit --no-run 2>&1 | tail -n 1
names=()
for r in $(seq 1 "$rounds"); do
  echo "round $r of $rounds: micro" >&2
  cargo bench --bench micro --features "$features" -- --save-baseline "$prefix-$r" \
    --warm-up-time "$warmup" --measurement-time "$measure" "${filter[@]}" >> "$log" 2>&1
  echo "round $r of $rounds: josekit" >&2
  # Only josekit's own benchmarks: compat's copy of jwe-session (built with
  # josekit's serde_json features) would overwrite the main workspace's
  # jwe-session results when both share a target directory.
  cargo bench --manifest-path compat/Cargo.toml --bench josekit -- --save-baseline "$prefix-$r" \
    --warm-up-time "$warmup" --measurement-time "$measure" '/josekit/' >> "$log" 2>&1
  names+=("$prefix-$r")
done
{
  echo "# Micro-benchmarks, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo
  python3 scripts/bench-table.py --rounds "$(IFS=,; echo "${names[*]}")"
} | tee "$out"
