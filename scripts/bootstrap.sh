#!/usr/bin/env bash
# Create (or reuse) .venv and install the package with its dev extra.
# Works on a fresh Debian machine with Python >= 3.11: installs python3-venv when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "error: $PY is not Python >= 3.11 (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv .venv
    else
      echo "error: '$PY -m venv' failed; install python3-venv" >&2
      exit 1
    fi
  fi
fi

# Offline TTS engines for spoken reports (modeling_speechct.data.tts; the tests use both): installed quietly, only when
# one is missing and we are root on a machine with apt-get.
if ! command -v espeak-ng >/dev/null || ! command -v flite >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log=.venv/apt-tts.log
    echo "installing espeak-ng and flite (apt-get; log: $log)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng flite; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      echo "error: apt-get install espeak-ng flite failed (full log: $log)" >&2
      exit 1
    fi
  else
    echo "warning: espeak-ng or flite is missing; install the Debian packages espeak-ng and flite (as root)" >&2
  fi
fi

# Chromium for the demo's browser test (Playwright drives the system browser; nothing is fetched from a CDN).
if ! command -v chromium >/dev/null; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log=.venv/apt-chromium.log
    echo "installing chromium (apt-get; log: $log)"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >"$log" 2>&1; then
      tail -n 20 "$log" >&2
      echo "error: apt-get install chromium failed (full log: $log)" >&2
      exit 1
    fi
  else
    echo "warning: chromium is missing; install the Debian package chromium (as root) for tests/test_demo_browser.py" >&2
  fi
fi

# Reinstall only when pyproject.toml changed since the last successful install.
stamp=".venv/.speechct-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  log=.venv/install.log
  echo "installing speechct-clip and its dependencies into .venv (log: $log)"
  if ! { .venv/bin/python -m pip install --upgrade pip && .venv/bin/python -m pip install -e ".[dev]"; } >"$log" 2>&1; then
    tail -n 40 "$log" >&2
    echo "error: pip install failed (full log: $log)" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi
