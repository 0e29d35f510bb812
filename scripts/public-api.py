#!/usr/bin/env python3
"""Counts the public API of the jwe-session library: every item a user can
name, reached from the crate root through public modules and re-exports.

Counted: modules, structs, enums and their variants, unions, traits and their
methods, functions, inherent methods and associated constants, public
fields, constants, statics, type aliases, macros. Not counted: trait
implementations (Display::fmt, Serialize, From, ...), nor re-exports of
other crates' items. An item reachable by two paths counts once.

    scripts/public-api.py            # the count and the list, from rustdoc JSON
    scripts/public-api.py --max N    # exits 1 when the count is above N

It runs `cargo rustdoc` with `--output-format json` (an unstable rustdoc
flag, allowed on the stable toolchain through RUSTC_BOOTSTRAP=1) with every
feature an application may enable (rsa, redis, axum, actix, metrics, dbsc): not
`internals`, which is not part of the API.
"""
import json
import os
import subprocess
import sys

root_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
target = os.environ.get("CARGO_TARGET_DIR", os.path.join(root_dir, "target"))
env = dict(os.environ, RUSTC_BOOTSTRAP="1")
subprocess.run(
    ["cargo", "rustdoc", "--lib", "-q", "--features", "rsa redis axum actix metrics dbsc", "--",
     "-Z", "unstable-options", "--output-format", "json"],
    cwd=root_dir, env=env, check=True)
doc = json.load(open(os.path.join(target, "doc", "jwe_session.json")))
index = doc["index"]

seen = set()
names = []


def kind_of(item):
    return next(iter(item["inner"]))


def public(item):
    return item.get("visibility") == "public"


def visit(item_id, path):
    item = index.get(str(item_id))
    if item is None or item.get("crate_id") != 0:
        return  # another crate's item
    kind = kind_of(item)
    inner = item["inner"][kind]
    if kind == "use":
        if inner.get("id") is not None:
            target_item = index.get(str(inner["id"]))
            if target_item is None:
                return
            if inner.get("is_glob"):
                for child in target_item["inner"].get("module", {}).get("items", []):
                    child_item = index.get(str(child))
                    if child_item and public(child_item):
                        visit(child, path)
                return
            visit(inner["id"], path)
        return
    if item_id in seen:
        return
    seen.add(item_id)
    name = item.get("name") or "?"
    full = f"{path}::{name}" if path else name
    names.append(f"{kind:12} {full}")
    if kind == "module":
        for child in inner["items"]:
            if public(index[str(child)]):
                visit(child, full)
    elif kind in ("struct", "union"):
        fields = inner.get("kind", {})
        for field_list in (fields.get("plain", {}).get("fields", []) if isinstance(fields, dict) else []):
            if public(index[str(field_list)]):
                visit(field_list, full)
        for f in (fields.get("tuple", []) if isinstance(fields, dict) else []):
            if f is not None and public(index[str(f)]):
                visit(f, full)
        impls(inner, full)
    elif kind == "enum":
        for variant in inner["variants"]:
            visit(variant, full)
        impls(inner, full)
    elif kind == "trait":
        for child in inner["items"]:
            visit(child, full)


def impls(inner, path):
    for impl_id in inner.get("impls", []):
        impl = index[str(impl_id)]["inner"]["impl"]
        if impl.get("trait") is not None or impl.get("is_synthetic") or impl.get("blanket_impl"):
            continue
        for child in impl["items"]:
            child_item = index[str(child)]
            if public(child_item):
                visit(child, path)


visit(doc["root"], "")
count = len(names) - 1  # not the crate itself
if "--list" in sys.argv:
    print("\n".join(sorted(names)))
print(f"public API items: {count}")
if "--max" in sys.argv:
    limit = int(sys.argv[sys.argv.index("--max") + 1])
    if count > limit:
        print(f"above the limit of {limit}", file=sys.stderr)
        sys.exit(1)
