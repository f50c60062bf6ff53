#!/usr/bin/env bash
# Install Debian's Chromium for the browser tests (tests/agent/web/test_browser.py).
# Idempotent: does nothing when /usr/bin/chromium is already there. Needs root.
# The tests drive this system browser through Playwright's Python package; they
# never download a browser (`playwright install` is not needed).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
packages=(chromium chromium-driver)
if ! apt-get install -y --no-install-recommends "${packages[@]}"; then
    apt-get update
    apt-get install -y --no-install-recommends "${packages[@]}"
fi
