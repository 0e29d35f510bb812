#!/usr/bin/env bash
# Installs what tests/dbsc_browser/driver.mjs needs on a fresh Debian machine (run as root):
# Debian's Chromium and the pinned playwright-core. Idempotent; skips what is already there.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [ ! -x /usr/lib/chromium/chromium ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
fi
command -v node >/dev/null || { echo "node (>= 20) is required" >&2; exit 1; }
if [ ! -f "$here/node_modules/playwright-core/package.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund)
fi
/usr/lib/chromium/chromium --version
