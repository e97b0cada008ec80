#!/usr/bin/env bash
# Best effort: make Debian's Chromium available for the browser tests.
# Never fails the build: the browser tests skip, with the reason, when Chromium
# cannot be installed (no apt, no root, no registry).
VENV=${1:-.venv}
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "[setup] installing Debian's chromium for the browser tests (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "[setup] could not install chromium; browser tests will be skipped"
else
    echo "[setup] chromium missing and apt-get unavailable (or not root); browser tests will be skipped"
fi
exit 0
