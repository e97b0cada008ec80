#!/usr/bin/env bash
# Make Debian's Chromium available for the browser tests (tests/test_browser.py).
#   bash scripts/setup_browser.sh [VENV_DIR]
# * nothing to do when /usr/bin/chromium runs;
# * else installs Debian's `chromium` package with apt-get (as root, or with passwordless
#   sudo). Playwright's own browser download is never used (the tests launch
#   /usr/bin/chromium through Playwright's executable_path).
# Never fails the build: when Chromium cannot be installed (no apt, no root, no
# registry) the browser tests skip and say why.
VENV=${1:-.venv}

chromium_ok() {
    [ -x /usr/bin/chromium ] && /usr/bin/chromium --version 2>/dev/null | grep -qi chrom
}

if chromium_ok; then
    echo "[setup] $(/usr/bin/chromium --version 2>/dev/null) present"
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "[setup] chromium missing and apt-get unavailable; browser tests will be skipped"
    exit 0
fi
if [ "$(id -u)" = "0" ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "[setup] chromium missing and not root (no passwordless sudo); browser tests will be skipped"
    exit 0
fi

echo "[setup] installing Debian's chromium for the browser tests (apt-get)"
export DEBIAN_FRONTEND=noninteractive
if ! "${SUDO[@]}" apt-get install -y -qq chromium >/tmp/setup_browser_apt.log 2>&1; then
    # package lists may be missing or stale (fresh containers): update once and retry
    "${SUDO[@]}" apt-get update -qq >>/tmp/setup_browser_apt.log 2>&1
    "${SUDO[@]}" apt-get install -y -qq chromium >>/tmp/setup_browser_apt.log 2>&1
fi
if chromium_ok; then
    echo "[setup] installed $(/usr/bin/chromium --version 2>/dev/null)"
else
    echo "[setup] could not install chromium (see /tmp/setup_browser_apt.log); browser tests will be skipped"
    tail -n 3 /tmp/setup_browser_apt.log 2>/dev/null | sed 's/^/[setup]   /'
fi
exit 0
