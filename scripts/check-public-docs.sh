#!/bin/sh
# The user-facing docs and example applications use only the public API:
# no path into a module that is public only with the `internals` feature,
# and none of the types it hides. (Their doctests cannot tell: the crate's
# tests always build with `internals`.)
set -eu
cd "$(dirname "$0")/.."
files="README.md docs/integrations.md docs/sessions.md docs/keys.md examples/shop_axum.rs examples/shop_actix.rs examples/axum.rs examples/actix.rs examples/demo/common.rs"
pattern='jwe_session::(session|jwe|keyring|key|clock|cookie|csrf)::|SessionManager|\bKeySet\b|\bKeyEntry\b|SaveOutcome|\bSession<|token_cache_stats|jwe_session::\{[^}]*\b(Session|SealOptions|OpenOptions|KeyProblem)\b'
status=0
for file in $files; do
    [ -f "$file" ] || continue
    if grep -nE "$pattern" "$file"; then
        echo "$file: uses what the public API does not have (above)" >&2
        status=1
    fi
done
exit $status
