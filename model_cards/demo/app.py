"""Gradio demo of SpeechCT-CLIP — runs as a Hub Space (this file is the Space's `app.py`) or locally:

    python model_cards/demo/app.py                                   # the embedded default's distilled student
    python model_cards/demo/app.py --model org/speechct-clip --prompts written
    python model_cards/demo/app.py --gallery_dir data/benchmark --gallery_split test --port 7860
    python model_cards/demo/app.py --speechclip_model outputs/speechclip/hybrid/final   # + the scenes tab
    python model_cards/demo/app.py --acula_model outputs/acula/both/final --acula_dir data/auscultation   # + AcuLa

The scenes tab (SpeechCLIP: speak a description, see the closest scenes and the spoken keywords) appears when
--speechclip_model exists (by default the main job's hybrid model, `bash scripts/run_main.sh speechclip`); its
gallery is --scenes_dir's --scenes_split images. The auscultation tab (AcuLa: upload a recording, see the closest
report phrases and reports and the linear probes' reading) appears likewise when --acula_model exists (by default the
main job's aligned tower, `bash scripts/run_main.sh acula`); its phrases, reports and probes come from --acula_dir's
--acula_split (the probes' C is chosen on that folder's valid split).

Environment variables (what a Space sets): SPEECHCT_MODEL (folder or Hub id), SPEECHCT_PROMPTS (spoken | written),
SPEECHCLIP_MODEL, ACULA_MODEL and ACULA_DATA (the AcuLa manifest folder).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from modeling_speechct.data.ctrate import load_ct_rate
from modeling_speechct.data.flickr8k import load_flickr8k
from modeling_speechct.hub.demo import DemoBackend, build_demo, launch
from modeling_speechct.hub.scene_search import SceneSearchBackend
from modeling_speechct.hub.sound_search import SoundSearchBackend

DEFAULT_MODEL = "outputs/benchmark/distilled/final"  # what README's main job writes
DEFAULT_SPEECHCLIP = "outputs/speechclip/hybrid/final"  # what `bash scripts/run_main.sh speechclip` writes
DEFAULT_ACULA = "outputs/acula/both/final"  # what `bash scripts/run_main.sh acula` writes (alignment + SSL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.environ.get("SPEECHCT_MODEL", DEFAULT_MODEL))
    prompts = os.environ.get("SPEECHCT_PROMPTS", "spoken")
    parser.add_argument("--prompts", choices=("spoken", "written"), default=prompts)
    parser.add_argument("--gallery_dir", default=None, help="a CT-RATE-layout dataset whose volumes form the gallery")
    parser.add_argument("--gallery_split", default="test")
    parser.add_argument("--speechclip_model", default=os.environ.get("SPEECHCLIP_MODEL", DEFAULT_SPEECHCLIP))
    parser.add_argument("--scenes_dir", default="data/scenes_benchmark")
    parser.add_argument("--scenes_split", default="test")
    parser.add_argument("--acula_model", default=os.environ.get("ACULA_MODEL", DEFAULT_ACULA))
    parser.add_argument("--acula_dir", default=os.environ.get("ACULA_DATA", "data/auscultation"))
    parser.add_argument("--acula_split", default="train")
    parser.add_argument("--port", type=int, default=None)
    args = parser.parse_args()
    if args.model == DEFAULT_MODEL and not Path(DEFAULT_MODEL).is_dir():
        raise SystemExit(f"{DEFAULT_MODEL} does not exist: run `bash scripts/run_main.sh` first, or pass --model.")
    gallery = None
    if args.gallery_dir:
        gallery = [row["volume"] for row in load_ct_rate(args.gallery_dir, args.gallery_split, require_speech=False)]
    backend = DemoBackend(args.model, prompts=args.prompts, gallery=gallery)
    scenes = None
    if Path(args.speechclip_model).is_dir() or args.speechclip_model != DEFAULT_SPEECHCLIP:
        images = sorted({str(c.image) for c in load_flickr8k(args.scenes_dir, args.scenes_split)})
        scenes = SceneSearchBackend(args.speechclip_model, images)
    sounds = None
    if Path(args.acula_model).is_dir() or args.acula_model != DEFAULT_ACULA:
        sounds = SoundSearchBackend(args.acula_model, args.acula_dir, split=args.acula_split)
    launch(build_demo(backend, scenes=scenes, sounds=sounds), port=args.port)


if __name__ == "__main__":
    main()
