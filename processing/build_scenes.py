"""Build SpeechCLIP's embedded scenes benchmark in the Flickr8k Audio Captions layout (no download).

    python processing/build_scenes.py --out data/scenes --num-images 2000

Procedural images of a few coloured shapes, five captions each from a grammar over what was drawn, each caption
spoken by a seeded voice of the training TTS engines (the held-out engine is refused). Re-running with the same
arguments keeps what is built (an interrupted build resumes). Read it with
`modeling_speechct.data.flickr8k.load_flickr8k(out, split)`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_speechct.data.scenes_build import ScenesConfig, build_scenes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="layout root (gets Flicker8k_Dataset/, …)")
    parser.add_argument("--num-images", type=int, default=ScenesConfig.num_images)
    parser.add_argument("--valid-fraction", type=float, default=ScenesConfig.valid_fraction)
    parser.add_argument("--test-fraction", type=float, default=ScenesConfig.test_fraction)
    parser.add_argument("--image-size", type=int, default=ScenesConfig.image_size)
    parser.add_argument("--seed", type=int, default=ScenesConfig.seed)
    parser.add_argument("--workers", type=int, default=ScenesConfig.workers)
    parser.add_argument("--tts-backends", default=",".join(ScenesConfig.tts_backends), help="comma list")
    parser.add_argument("--no-speech", action="store_true", help="images and captions only")
    args = parser.parse_args()
    config = ScenesConfig(
        out=args.out,
        num_images=args.num_images,
        valid_fraction=args.valid_fraction,
        test_fraction=args.test_fraction,
        image_size=args.image_size,
        seed=args.seed,
        workers=args.workers,
        tts_backends=tuple(b.strip() for b in args.tts_backends.split(",") if b.strip()),
        speech=not args.no_speech,
    )
    try:
        stats = build_scenes(config)
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"build_scenes: {error}") from None
    print(json.dumps({k: v for k, v in stats.items() if k != "speech"}, indent=1))


if __name__ == "__main__":
    main()
