#!/usr/bin/env bash
# Install what the tests need (Debian packages when run as root, Python packages), then run them.
# Usage: bash scripts/test.sh [pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(faketime xvfb x11-xserver-utils pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins espeak-ng)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "not root or no apt-get: tests needing ${SYSTEM_PACKAGES[*]} skip with a reason" >&2
fi

python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
python -m pytest "$@"
