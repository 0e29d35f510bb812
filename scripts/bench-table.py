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
ROOT = os.path.join(REPO, "target", "criterion")
COMPAT_ROOT = os.path.join(REPO, "compat", "target", "criterion")
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


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        return compare(sys.argv[2], sys.argv[3])
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
