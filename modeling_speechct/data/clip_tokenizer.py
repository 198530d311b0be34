"""A CLIP BPE tokenizer trained on a caption corpus (the scenes benchmark's), loadable by `CLIPTokenizer(Fast)`.

CLIP's tokenizer is a lower-cased BPE whose word-final subwords end in "</w>", with `<|startoftext|>` and
`<|endoftext|>` as its last two ids. The `tokenizers` library trains the merges; the vocabulary is then laid out
as CLIP's (every single character and its word-final form — so any lower-case word tokenizes without an unknown —,
the learnt subwords, the two special tokens last) and written as `vocab.json` + `merges.txt` with the tokenizer's
own `save_pretrained` files. SpeechCLIP's keywords are subwords of this vocabulary.
"""

from __future__ import annotations

import json
import os
import string
import tempfile
from collections.abc import Iterable
from pathlib import Path

SOT, EOT = "<|startoftext|>", "<|endoftext|>"
ALPHABET = tuple(string.ascii_lowercase + string.digits + ".,:;'-")


def train_clip_tokenizer(captions: Iterable[str], vocab_size: int, out_dir: str | os.PathLike):
    """Train on `captions`, write the tokenizer into `out_dir`, and return it (a `CLIPTokenizer`)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    captions = [c for c in captions if c.strip()]
    if not captions:
        raise ValueError("train_clip_tokenizer: no captions to learn from.")
    minimum = 2 * len(ALPHABET) + 2
    if vocab_size < minimum:
        raise ValueError(f"vocab_size={vocab_size}: at least {minimum} (every character, word-final or not, + 2).")
    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token=EOT))
    bpe.normalizer = normalizers.Lowercase()
    bpe.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - 2, special_tokens=[], end_of_word_suffix="</w>",
                                  initial_alphabet=list(ALPHABET), show_progress=False)  # fmt: skip
    bpe.train_from_iterator(captions, trainer)
    learnt = sorted(bpe.get_vocab().items(), key=lambda item: item[1])
    tokens = [*ALPHABET, *(f"{c}</w>" for c in ALPHABET)]
    tokens += [t for t, _ in learnt if t not in set(tokens)]
    vocab = {token: i for i, token in enumerate(tokens[: vocab_size - 2])}
    vocab[SOT], vocab[EOT] = len(vocab), len(vocab) + 1
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        bpe.model.save(scratch)
        merges = [line for line in Path(scratch, "merges.txt").read_text(encoding="utf-8").splitlines()[1:] if line]
    kept = [m for m in merges if all(part in vocab for part in m.split()) and "".join(m.split()) in vocab]
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(kept) + "\n", encoding="utf-8")
    tokenizer = CLIPTokenizer(vocab=str(out_dir / "vocab.json"), merges=str(out_dir / "merges.txt"))
    tokenizer.save_pretrained(out_dir)
    return tokenizer
