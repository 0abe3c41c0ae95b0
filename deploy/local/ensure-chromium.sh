#!/usr/bin/env bash
# Headless Chromium for the end-to-end tests (tests/e2e), from Debian's own package: the
# machines reach only PyPI, Debian and npm, so Playwright's browser downloads cannot work.
# Idempotent: does nothing when /usr/bin/chromium is already there.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
bash "$(dirname "$0")/apt-install.sh" chromium fonts-dejavu-core
/usr/bin/chromium --version
