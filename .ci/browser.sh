#!/usr/bin/env bash
# What the desk's browser tests need (tests/test_web_browser.py): Debian's headless chromium, which
# Playwright drives through executable_path (Playwright's own browser download is not reachable from CI).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
/usr/bin/chromium --version
