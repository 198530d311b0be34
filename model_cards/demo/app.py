"""Gradio demo of SpeechCT-CLIP — runs as a Hub Space (this file is the Space's `app.py`) or locally:

    python model_cards/demo/app.py                                   # the embedded default's distilled student
    python model_cards/demo/app.py --model org/speechct-clip --prompts written
    python model_cards/demo/app.py --gallery_dir data/benchmark --gallery_split test --port 7860

Environment variables (what a Space sets): SPEECHCT_MODEL (folder or Hub id), SPEECHCT_PROMPTS (spoken | written).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.hub.demo import DemoBackend, build_demo, launch

DEFAULT_MODEL = "outputs/benchmark/distilled/final"  # what README's main job writes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SPEECHCT_MODEL", DEFAULT_MODEL))
    prompts = os.environ.get("SPEECHCT_PROMPTS", "spoken")
    parser.add_argument("--prompts", choices=("spoken", "written"), default=prompts)
    parser.add_argument("--gallery_dir", default=None, help="a CT-RATE-layout dataset whose volumes form the gallery")
    parser.add_argument("--gallery_split", default="test")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    if args.model == DEFAULT_MODEL and not Path(DEFAULT_MODEL).is_dir():
        raise SystemExit(f"{DEFAULT_MODEL} does not exist: run `bash scripts/run_main.sh` first, or pass --model.")
    gallery = None
    if args.gallery_dir:
        gallery = [row["volume"] for row in load_ct_rate(args.gallery_dir, args.gallery_split, require_speech=False)]
    backend = DemoBackend(args.model, prompts=args.prompts, gallery=gallery)
    launch(build_demo(backend), port=args.port)


if __name__ == "__main__":
    main()
