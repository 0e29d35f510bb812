#!/bin/sh
# The module dependencies run one way: jwe never imports keyring (key
# states live in key_state), and nothing outside session imports its token
# cache (which lives inside session).
set -eu
cd "$(dirname "$0")/.."
status=0
if grep -rnE "crate::keyring|super::super::keyring" $(ls -d src/jwe src/jwe.rs 2>/dev/null); then
    echo "src/jwe imports keyring (above)" >&2; status=1
fi
if grep -rnE "(crate|super|session)::token_cache\b|^\s*(pub(\(crate\))? )?mod token_cache" src --include=*.rs | grep -v "^src/session/"; then
    echo "a module outside session imports the token cache (above)" >&2; status=1
fi
if grep -rnE "use crate::session" src/session/token_cache.rs; then
    echo "the token cache imports the session module's root (above)" >&2; status=1
fi
exit $status
