#!/usr/bin/env bash
# Installs the Debian packages named as arguments, quietly, as root or through sudo: what the
# test tools need comes from Debian's own packages (the machines reach only PyPI, Debian and
# npm). Used by ensure-chromium.sh and ensure-poppler.sh once they found a tool missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != "0" ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
