#!/usr/bin/env bash
# The main job: bootstrap .venv, then the embedded default end to end (train/run_benchmark.py): build the benchmark
# if missing, train the CT ↔ text teacher, the naive and the distilled speech students, evaluate all three.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec .venv/bin/python train/run_benchmark.py "$@"
