#!/usr/bin/env bash
# The main job: bootstrap .venv, then the model smoke run (grows into the embedded benchmark's distillation run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python train/smoke_run.py "$@"
