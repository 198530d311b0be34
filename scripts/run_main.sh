#!/usr/bin/env bash
# The main jobs: bootstrap .venv, then a system's embedded default end to end.
#   bash scripts/run_main.sh              SpeechCT-CLIP (train/run_benchmark.py): build the CT benchmark if missing,
#                                         the CT ↔ text teacher, the naive and the distilled speech students, evaluation
#   bash scripts/run_main.sh speechclip   SpeechCLIP / SpeechCLIP+ (train/run_speechclip_benchmark.py): the scenes,
#                                         five variants against the frozen scenes CLIP, one table with intervals
#   bash scripts/run_main.sh acula        AcuLa (train/run_acula_benchmark.py): the auscultation benchmark, the shipped
#                                         MAE before and after alignment to MiniLM (+ ablations), linear probes
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
if [ "${1:-}" = speechclip ]; then
    shift
    exec .venv/bin/python train/run_speechclip_benchmark.py "$@"
fi
if [ "${1:-}" = acula ]; then
    shift
    exec .venv/bin/python train/run_acula_benchmark.py "$@"
fi
exec .venv/bin/python train/run_benchmark.py "$@"
