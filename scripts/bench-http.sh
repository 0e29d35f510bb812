#!/usr/bin/env bash
# The HTTP benchmark of docs/benchmarks.md: axum and actix-web, bare and with
# the session layer, axum with a layer that does nothing, and axum with the
# key rotated every second, driven by
# the Rust load generator in benches/http_load.rs. Loopback only (127.0.0.1,
# ephemeral ports); every run is bounded in requests and in time.
#
#   scripts/bench-http.sh                      # the defaults below
#   HTTP_REQUESTS=50000 HTTP_ROUNDS=1 scripts/bench-http.sh
#   HTTP_ONLY=axum-bare,axum-session scripts/bench-http.sh
#   HTTP_RATE=15000 scripts/bench-http.sh      # paced: server CPU at equal load
#
# Settings (environment): HTTP_REQUESTS (200000 per configuration and
# round), HTTP_WARMUP (20000), HTTP_CONNECTIONS (32), HTTP_MAX_SECS (30, the
# bound on any one run), HTTP_ROUNDS (5), HTTP_ROTATION_SECS (10),
# HTTP_RATE (0: as fast as the server answers; otherwise the requests per
# second, over all connections, the generator paces itself to: every
# configuration then serves the same arrivals, so the server CPU it adds a
# request is its own work and not fewer requests per wake-up),
# HTTP_ONLY (a comma-separated subset of axum-bare, axum-noop-layer,
# axum-session, axum-session-nocache, actix-bare, actix-session,
# actix-session-nocache, axum-session-rotation; "nocache" is the session
# layer with its token cache off, "noop-layer" a route layer that does
# nothing: what axum's layering itself costs, for reference).
#
# The steady configurations run in HTTP_ROUNDS interleaved rounds (every
# configuration once per round, in the same order), so a quieter or busier
# moment of a shared machine falls on all of them. The report gives each
# configuration's median and spread (lowest–highest round), the host's
# bare-handler cost (so runs on different hosts compare), and the layer's
# cost round by round against the bare round just before it: a target is
# "met" only when every round meets it, "MISSED" when none does, "unclear"
# otherwise.
#
# The results table is printed and kept in $CARGO_TARGET_DIR/bench-http/
# results.md (target/bench-http/results.md by default).
set -euo pipefail
cd "$(dirname "$0")/.."

out="${CARGO_TARGET_DIR:-target}/bench-http"
mkdir -p "$out"
{
  echo "# HTTP benchmark, $(date -u +%Y-%m-%dT%H:%M:%SZ), $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo
  echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/Mem:/ {print $2}') GiB"
  echo
} > "$out/results.md"
cargo bench --bench http_load --features axum,actix 2>&1 \
  | grep -v -E '^\s*(Compiling|Finished|Running|Downloaded|Downloading)' \
  | tee -a "$out/results.md"
