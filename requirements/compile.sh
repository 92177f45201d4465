#!/usr/bin/env bash
# Resolve every pyproject.toml's ranges in a throw-away venv and write the exact versions to lock.txt
# (pip-compile style `name==version` lines, no index URLs), with platform markers; then requirements/desk.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet --upgrade pip
"$tmp/venv/bin/pip" install --quiet ./kernel'[server]' ./services/contacts ./services/generator \
  ./services/importexport ./services/gateway ./services/dialer-agent ./client ./system '.[dev]'
{
  echo "# Exact versions for every CallManager distribution and the dev tools."
  echo "# Regenerate with: make lock"
  "$tmp/venv/bin/pip" freeze --exclude-editable | grep -viE '^(callmanager-|-e |pip==)' | sort -f
} > requirements/lock.txt
# Resolve again for Windows and Linux with the versions just frozen: platform markers on the main lock
# (uvloop not on Windows; pywin32-ctypes, pywinauto, colorama only there), then the desks' own lock.
"$tmp/venv/bin/python" desk/lock.py --main
"$tmp/venv/bin/python" desk/lock.py
