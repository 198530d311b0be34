#!/usr/bin/env bash
# The test suite: bootstrap .venv, lint, then pytest on 2 workers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n 2 -q "$@"
