#!/usr/bin/env bash
# The test suite: each package's tests in a virtual environment holding only the core and that
# package (the per-package matrix), then the integration tests with everything installed.
# Installs Debian packages first when run as root. Usage: bash scripts/test.sh [pytest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENVS=${CHIMERAPY_TEST_VENVS:-$ROOT/.venvs}
PYTHON=${PYTHON:-python3}

SYSTEM_PACKAGES=(faketime xvfb x11-xserver-utils pulseaudio pulseaudio-utils libportaudio2 libasound2-plugins espeak-ng chromium iproute2 util-linux)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for package in "${SYSTEM_PACKAGES[@]}"; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
else
  echo "not root or no apt-get: tests needing ${SYSTEM_PACKAGES[*]} skip with a reason" >&2
fi

# suite name | what to install | test folders (space-separated)
SUITES=(
  "core|-e packages/core[test,discovery]|tests/core tests/compat"
  "nodes-video|-e packages/core[test] -e packages/nodes-video[test]|tests/nodes_video"
  "nodes-audio|-e packages/core[test] -e packages/nodes-audio[test]|tests/nodes_audio"
  "nodes-ml|-e packages/core[test] -e packages/nodes-video[test] -e packages/nodes-ml[test]|tests/nodes_ml"
  "nodes-lsl|-e packages/core[test] -e packages/nodes-lsl[test]|tests/nodes_lsl"
  "integration|-r requirements-dev.txt|tests/integration"
)

mkdir -p "$VENVS"
rm -f "$VENVS"/*.xml
failed_suites=()
for suite in "${SUITES[@]}"; do
  IFS="|" read -r name requirements folders <<<"$suite"
  read -ra folder_list <<<"$folders"
  present=()
  for folder in "${folder_list[@]}"; do
    ls "$folder"/test_*.py >/dev/null 2>&1 && present+=("$folder")
  done
  [ ${#present[@]} -gt 0 ] || { echo "== $name: no tests"; continue; }
  echo "== $name: installing into $VENVS/$name"
  [ -x "$VENVS/$name/bin/python" ] || "$PYTHON" -m venv "$VENVS/$name"
  # shellcheck disable=SC2086
  if ! "$VENVS/$name/bin/python" -m pip install -q --disable-pip-version-check $requirements; then
    echo "== $name: installation failed"; failed_suites+=("$name"); continue
  fi
  echo "== $name: testing ${present[*]}"
  "$VENVS/$name/bin/python" -m pytest "${present[@]}" -p no:cacheprovider --durations=10 --junitxml="$VENVS/$name.xml" "$@" \
    || failed_suites+=("$name")
done

# Static checks over every package, in the environment that has them all (config: pyproject.toml).
if [ -x "$VENVS/integration/bin/python" ]; then
  echo "== lint: ruff check packages/ && mypy packages/"
  "$VENVS/integration/bin/python" -m ruff check packages/ || failed_suites+=("ruff")
  "$VENVS/integration/bin/python" -m mypy packages/ || failed_suites+=("mypy")
else
  echo "== lint: no integration environment to run ruff and mypy in"; failed_suites+=("lint")
fi

"$PYTHON" - "$VENVS" <<'PY'
import sys, xml.etree.ElementTree as ET
from pathlib import Path
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in sorted(Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"matrix: {passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
rm -f "$VENVS"/*.xml
if [ ${#failed_suites[@]} -gt 0 ]; then
  echo "failed suites: ${failed_suites[*]}"
  exit 1
fi
