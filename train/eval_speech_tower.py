"""Character and word error rates of a CTC speech tower on freshly synthesised sentences it never saw, spoken in
its training voices and in voices it never heard.

    python train/eval_speech_tower.py                       # the tower shipped in the package
    python train/eval_speech_tower.py --model outputs/speech_tower/final --sentences 300
    python train/eval_speech_tower.py --sentences 600 --output fresh.json  # then ship_speech_tower.py --fresh_eval
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from modeling_speechct.data.speech_corpus import sentence_pool, transcript
from modeling_speechct.files.provenance import sha256_file, write_json_atomic
from modeling_speechct.training.speech_tower import SHIPPED_SPEECH_TOWER, evaluate, load_speech_tower, speak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=SHIPPED_SPEECH_TOWER)
    parser.add_argument("--sentences", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261121, help="seed of the fresh sentences and their voices")
    parser.add_argument("--train_sentences", type=int, default=12200, help="pretraining pool size, to exclude it")
    parser.add_argument("--train_seed", type=int, default=0, help="pretraining pool seed, to exclude it")
    parser.add_argument("--output", type=Path, default=None, help="also write the results (JSON) here, atomically")
    args = parser.parse_args()

    seen_before = {transcript(text) for text, _ in sentence_pool(args.train_sentences, args.train_seed)}
    # Keep the pool's radiology / general mix: templated radiology sentences collide with the training pool far more
    # often than general ones, so dropping collisions alone would leave a set of mostly general sentences (~70 %).
    fresh = [
        (t, source) for t, source in sentence_pool(6 * args.sentences, args.seed) if transcript(t) not in seen_before
    ]
    per_source = {"radiology": args.sentences // 2, "general": args.sentences - args.sentences // 2}
    texts = [t for source, n in per_source.items() for t in [t for t, s in fresh if s == source][:n]]
    model, processor = load_speech_tower(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "sentences": len(texts),
            "training_voices": evaluate(model, processor, speak(texts, Path(tmp) / "seen", args.seed, False), texts),
            "held_out_voices": evaluate(model, processor, speak(texts, Path(tmp) / "unseen", args.seed, True), texts),
        }
    results["weights_sha256"] = sha256_file(args.model / "model.safetensors")
    results["command"] = " ".join(["python train/eval_speech_tower.py", *sys.argv[1:]])
    print(json.dumps(results, indent=1))
    if args.output is not None:
        write_json_atomic(args.output, results)


if __name__ == "__main__":
    main()
