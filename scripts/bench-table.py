#!/usr/bin/env python3
"""Turns criterion's results for `benches/micro.rs` into the markdown tables
of docs/benchmarks.md, with the ratios the targets are about.

    cargo bench --bench micro --features rsa
    cargo bench --manifest-path compat/Cargo.toml --bench josekit
    python3 scripts/bench-table.py            # reads target/criterion/*/new
    python3 scripts/bench-table.py before     # a baseline saved with
                                              # `-- --save-baseline before`
    python3 scripts/bench-table.py --compare before new
                                              # jwe-session's own times, side by side
    python3 scripts/bench-table.py --rounds round-1,round-2,round-3,round-4,round-5
                                              # medians of interleaved rounds, with
                                              # their spread (scripts/bench-micro.sh)

josekit is benchmarked in its own workspace (compat/: it turns on serde_json's
preserve_order, which applications do not get): its figures come from
compat/target/criterion, everything else from target/criterion.

Times are criterion's median estimates. Ratios: jwe-session / floor (target
at most 1.25 at 250 bytes) and josekit / jwe-session (target at least 2).
"""
import json
import os
import sys

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
# With CARGO_TARGET_DIR set, both workspaces write their results there.
TARGET = os.environ.get("CARGO_TARGET_DIR")
ROOT = os.path.join(TARGET or os.path.join(REPO, "target"), "criterion")
COMPAT_ROOT = os.path.join(TARGET or os.path.join(REPO, "compat", "target"), "criterion")
PAIRS = ["dir+A256GCM", "A256KW+A256GCM", "A256GCMKW+A256GCM"]


def load(baseline):
    """The main workspace's results, with josekit's from compat/."""
    results = load_root(ROOT, baseline)
    for key, ns in load_root(COMPAT_ROOT, baseline).items():
        if key[1] == "josekit":
            results[key] = ns
    return results


def load_root(root, baseline):
    results = {}
    for dirpath, _dirs, files in os.walk(root):
        if os.path.basename(dirpath) != baseline or "estimates.json" not in files:
            continue
        with open(os.path.join(dirpath, "benchmark.json")) as f:
            meta = json.load(f)
        with open(os.path.join(dirpath, "estimates.json")) as f:
            est = json.load(f)
        key = (meta["group_id"], meta["function_id"], meta.get("value_str"))
        results[key] = est["median"]["point_estimate"]
    return results


def fmt(ns):
    if ns is None:
        return "–"
    return f"{ns / 1000:.2f} µs" if ns >= 1000 else f"{ns:.0f} ns"


def ratio(a, b):
    if a is None or b is None:
        return "–"
    return f"{a / b:.2f}×"


def compare(old_name, new_name):
    old, new = load(old_name), load(new_name)
    print(f"| operation | pair | {old_name} | {new_name} | change |")
    print("|---|---|---:|---:|---:|")
    for level, ops in [("jwe", ["seal", "open"]), ("session", ["save", "load"])]:
        for op in ops:
            for size in ["250B", "2KiB"]:
                group = f"{level}/{op}/{size}"
                for pair in PAIRS:
                    a = old.get((group, "jwe-session", pair))
                    b = new.get((group, "jwe-session", pair))
                    if a is None or b is None:
                        continue
                    print(f"| `{group}` | {pair} | {fmt(a)} | {fmt(b)} | {(b / a - 1) * 100:+.0f}% |")
    for key in sorted(k for k in new if k[0] == "parts"):
        a, b = old.get(key), new.get(key)
        if a is not None and b is not None:
            print(f"| {key[1]} | | {fmt(a)} | {fmt(b)} | {(b / a - 1) * 100:+.0f}% |")


# ---------------------------------------------------------------------------
# Medians of interleaved rounds (scripts/bench-micro.sh): each round is one
# criterion baseline; a time is the median of the rounds' criterion medians,
# a ratio the median of the rounds' ratios (each round's two figures were
# measured minutes apart at most), both shown with their spread
# (lowest–highest round). A target is "met" only when every round meets it,
# "MISSED" when none does, "unclear" otherwise.


def median(values):
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def fmt_spread(values):
    if not values:
        return "–"
    m, lo, hi = median(values), min(values), max(values)
    if m >= 1000:
        return f"{m / 1000:.2f} µs ({lo / 1000:.2f}–{hi / 1000:.2f})"
    return f"{m:.0f} ns ({lo:.0f}–{hi:.0f})"


def ratio_spread(values, limit=None, at_least=False):
    if not values:
        return "–"
    text = f"{median(values):.2f}× ({min(values):.2f}–{max(values):.2f})"
    if limit is None:
        return text
    ok = [(v >= limit) if at_least else (v <= limit) for v in values]
    verdict = "met" if all(ok) else ("MISSED" if not any(ok) else "unclear")
    return f"{text} {verdict}"


def rounds_table(names):
    runs = [load(name) for name in names]
    runs = [r for r in runs if r]
    if not runs:
        sys.exit(f"no criterion results for baselines {names!r} under {ROOT}")

    def series(key):
        return [r[key] for r in runs if key in r]

    def ratios(a_key, b_key):
        return [r[a_key] / r[b_key] for r in runs if a_key in r and b_key in r]

    print(f"Medians of {len(runs)} interleaved rounds ({', '.join(names)}), the spread "
          "(lowest–highest round) in brackets. Ratios: jwe-session / floor (target at most "
          "1.25) and josekit / jwe-session (target at least 2), per round, then their median.\n")
    host = series(("session/load/250B", "floor", "dir+A256GCM"))
    if host:
        print(f"Host reference: the floor's `session/load/250B` (`dir`) takes {fmt_spread(host)}.\n")
    for level in ["jwe", "session"]:
        for op in (["seal", "open"] if level == "jwe" else ["save", "load"]):
            for size in ["250B", "2KiB"]:
                group = f"{level}/{op}/{size}"
                if not any(k[0] == group for r in runs for k in r):
                    continue
                jose_group = group if level == "jwe" else f"jwe/{'seal' if op == 'save' else 'open'}/{size}"
                print(f"#### `{group}`\n")
                if level == "jwe":
                    print("| pair | jwe-session | floor | josekit | cookie private jar | jwe-session / floor | josekit / jwe-session |")
                else:
                    print("| pair | jwe-session | floor | cookie private jar + serde_json | josekit (JWE only) | jwe-session / floor | josekit (JWE only) / jwe-session |")
                print("|---|---:|---:|---:|---:|---:|---:|")
                for pair in PAIRS:
                    ours = (group, "jwe-session", pair)
                    floor = (group, "floor", pair)
                    cookie = (group, "cookie-private", pair)
                    jose = (jose_group, "josekit", pair)
                    third, fourth = (jose, cookie) if level == "jwe" else (cookie, jose)
                    print(f"| {pair} | {fmt_spread(series(ours))} | {fmt_spread(series(floor))} | "
                          f"{fmt_spread(series(third))} | {fmt_spread(series(fourth))} | "
                          f"{ratio_spread(ratios(ours, floor), 1.25)} | "
                          f"{ratio_spread(ratios(jose, ours), 2.0, at_least=True)} |")
                cached = [(pair, (group, "jwe-session-cached", pair)) for pair in PAIRS]
                if any(series(key) for _, key in cached):
                    print()
                    print("The same token loaded again, from the token cache (the default):\n")
                    print("| pair | jwe-session, cached token | floor | jwe-session cached / floor |")
                    print("|---|---:|---:|---:|")
                    for pair, key in cached:
                        floor = (group, "floor", pair)
                        print(f"| {pair} | {fmt_spread(series(key))} | {fmt_spread(series(floor))} | "
                              f"{ratio_spread(ratios(key, floor))} |")
                print()
    parts = sorted({k for r in runs for k in r if k[0] == "parts"})
    if parts:
        print("#### `parts`\n")
        print("| operation | time |")
        print("|---|---:|")
        for key in parts:
            print(f"| {key[1]} | {fmt_spread(series(key))} |")
        print()


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        return compare(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 3 and sys.argv[1] == "--rounds":
        return rounds_table(sys.argv[2].split(","))
    baseline = sys.argv[1] if len(sys.argv) > 1 else "new"
    r = load(baseline)
    if not r:
        sys.exit(f"no criterion results for baseline {baseline!r} under {ROOT}")
    for level in ["jwe", "session"]:
        for op in (["seal", "open"] if level == "jwe" else ["save", "load"]):
            for size in ["250B", "2KiB"]:
                group = f"{level}/{op}/{size}"
                if not any(k[0] == group for k in r):
                    continue
                print(f"#### `{group}`\n")
                if level == "jwe":
                    print("| pair | jwe-session | floor | josekit | cookie private jar | jwe-session / floor | josekit / jwe-session |")
                    print("|---|---:|---:|---:|---:|---:|---:|")
                else:
                    jose_group = f"jwe/{'seal' if op == 'save' else 'open'}/{size}"
                    print("| pair | jwe-session | floor | cookie private jar + serde_json | josekit (JWE only) | jwe-session / floor | josekit / jwe-session |")
                    print("|---|---:|---:|---:|---:|---:|---:|")
                for pair in PAIRS:
                    ours = r.get((group, "jwe-session", pair))
                    floor = r.get((group, "floor", pair))
                    cookie = r.get((group, "cookie-private", pair))
                    if level == "jwe":
                        jose = r.get((group, "josekit", pair))
                    else:
                        jose = r.get((jose_group, "josekit", pair))
                    print(f"| {pair} | {fmt(ours)} | {fmt(floor)} | {fmt(jose) if level == 'jwe' else fmt(cookie)} | "
                          f"{fmt(cookie) if level == 'jwe' else fmt(jose)} | {ratio(ours, floor)} | {ratio(jose, ours)} |")
                cached = [(pair, r.get((group, "jwe-session-cached", pair))) for pair in PAIRS]
                if any(ns for _, ns in cached):
                    print()
                    print("The same token loaded again, from the token cache (the default):\n")
                    print("| pair | jwe-session, cached token | floor | jwe-session cached / floor |")
                    print("|---|---:|---:|---:|")
                    for pair, ns in cached:
                        floor = r.get((group, "floor", pair))
                        print(f"| {pair} | {fmt(ns)} | {fmt(floor)} | {ratio(ns, floor)} |")
                print()
    parts = sorted((k[1], v) for k, v in r.items() if k[0] == "parts")
    if parts:
        print("#### `parts`\n")
        print("| operation | time |")
        print("|---|---:|")
        for name, ns in parts:
            print(f"| {name} | {fmt(ns)} |")
        print()


if __name__ == "__main__":
    main()
