"""SpeechCLIP's evaluation: per-image counts against independent computations (the by-hand retrieval of
`speechclip_metrics`, a brute-force loop, `keyword_hit_rate`), intervals that resample images (a hand-written
cluster bootstrap), paired differences and ratios."""

import numpy as np
import pytest

from modeling_speechct.evaluation.speechclip_eval import (
    SplitEmbeddings,
    compare,
    frequent_subword_counts,
    keyword_counts,
    model_counts,
    ratio,
    retrieval_counts,
    summarise,
    text_codes,
)
from modeling_speechct.evaluation.speechclip_metrics import keyword_hit_rate, speech_image_retrieval
from modeling_speechct.evaluation.speechclip_report import relative, report


def _split(seed=0, images=12, per_image=5, dim=6, noise=1.0):
    rng = np.random.default_rng(seed)
    gallery = rng.normal(size=(images, dim))
    ids = np.repeat(np.arange(100, 100 + images), per_image)
    image_embeds = gallery[np.repeat(np.arange(images), per_image)]
    speech = image_embeds + noise * rng.normal(size=image_embeds.shape)
    return SplitEmbeddings(item_ids=ids, image_embeds=image_embeds, speech={"parallel": speech}), rng


def _brute_force_recall(queries, gallery, correct, k):
    """Share of queries with a correct gallery item among their k most similar (cosine; ties pessimistic)."""
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    hits = []
    for i in range(len(q)):
        sims = g @ q[i]
        best = max(sims[j] for j in range(len(g)) if correct(i, j))
        wrong_above = sum(1 for j in range(len(g)) if not correct(i, j) and sims[j] >= best)
        hits.append(wrong_above + 1 <= k)
    return float(np.mean(hits))


def test_image_retrieval_counts_give_the_papers_recall():
    split, _ = _split()
    counts = retrieval_counts("parallel", split.speech["parallel"], split)
    reference = speech_image_retrieval(split.speech["parallel"], split.image_embeds, split.item_ids)
    for direction, name in (("speech_to_image", "speech→image"), ("image_to_speech", "image→speech")):
        for k in (1, 5, 10):
            num, den = counts[f"parallel {name} R@{k}"]
            assert num.shape == den.shape == (12,)  # per image
            assert ratio(num, den) == pytest.approx(reference[direction][f"R@{k}"])


def test_speech_text_counts_against_a_brute_force_loop_with_repeated_captions():
    split, rng = _split(seed=1)
    words = ["a red cross", "a blue ring", "the cross is red", "a small cross"]
    captions = [words[i] for i in rng.integers(0, len(words), len(split.item_ids))]
    captions[0], captions[7] = " A  Red cross ", "a red cross"  # case and spacing do not make another caption
    codes = text_codes(captions)
    assert codes[0] == codes[7] and len(set(codes.tolist())) == len({" ".join(c.lower().split()) for c in captions})
    texts = {c: rng.normal(size=6) for c in set(codes.tolist())}
    text_embeds = np.stack([texts[c] for c in codes]) + 0.3 * rng.normal(size=(len(codes), 6))
    counts = model_counts(split, text_embeds, captions)
    speech = split.speech["parallel"]
    distinct = sorted(set(codes.tolist()))
    first = [int(np.flatnonzero(codes == c)[0]) for c in distinct]
    for k in (1, 5):
        want = _brute_force_recall(speech, text_embeds[first], lambda i, j: codes[i] == distinct[j], k)
        assert ratio(*counts[f"parallel speech→text R@{k}"]) == pytest.approx(want)
        want = _brute_force_recall(text_embeds, speech, lambda i, j: codes[i] == codes[j], k)
        assert ratio(*counts[f"parallel text→speech R@{k}"]) == pytest.approx(want)


def test_keyword_counts_give_keyword_hit_rate_with_cif_padding():
    split, rng = _split(seed=2, images=4, per_image=2)
    split.keyword_ids = rng.integers(0, 6, size=(8, 3, 5))
    split.keyword_mask = np.array([[1, 1, 1], [1, 0, 0], [1, 1, 0], [0, 0, 0]] * 2, dtype=bool)
    transcripts = [rng.integers(0, 6, size=3).tolist() for _ in range(8)]
    counts = keyword_counts("cascaded", split, transcripts)
    reference = keyword_hit_rate(split.keyword_ids, split.keyword_mask, transcripts)
    for k in (1, 5):
        num, den = counts[f"cascaded keyword hit top-{k}"]
        assert den.tolist() == [4, 2, 4, 2]  # real slots per image (two utterances each)
        assert ratio(num, den) == pytest.approx(reference[f"top{k}"]["mean"])


def test_intervals_resample_images_not_captions():
    split, _ = _split(seed=3, noise=2.0)
    counts = retrieval_counts("parallel", split.speech["parallel"], split)
    num, den = counts["parallel speech→image R@5"]
    got = summarise(counts, n_resamples=200, seed=7)["parallel speech→image R@5"]
    rng = np.random.default_rng(7)  # the cluster bootstrap by hand: draw images, pool their captions
    stats = []
    for _ in range(200):
        draw = rng.integers(0, len(num), len(num))
        stats.append(num[draw].sum() / den[draw].sum())
    assert got["value"] == pytest.approx(num.sum() / den.sum())
    assert got["ci95"] == pytest.approx(list(np.percentile(stats, [2.5, 97.5])))


def test_paired_differences_and_ratios_share_image_draws():
    split, rng = _split(seed=4, noise=1.5)
    better = SplitEmbeddings(split.item_ids, split.image_embeds, {"parallel": split.image_embeds
                             + 0.3 * rng.normal(size=split.image_embeds.shape)})  # fmt: skip
    a = retrieval_counts("parallel", better.speech["parallel"], better)
    b = retrieval_counts("parallel", split.speech["parallel"], split)
    same = compare(b, b, ["parallel speech→image R@5"], n_resamples=100)["parallel speech→image R@5"]
    assert same["difference"] == 0 and same["ci95"] == [0, 0] and not same["excludes_zero"]
    diff = compare(a, b, ["parallel speech→image R@5"], n_resamples=300)["parallel speech→image R@5"]
    assert diff["difference"] == pytest.approx(diff["a"] - diff["b"]) and diff["a"] > diff["b"]
    assert diff["excludes_zero"] and diff["ci95"][0] > 0
    cross = compare(a, b, ["parallel speech→image R@1|parallel speech→image R@5"], n_resamples=50)
    assert list(cross) == ["parallel speech→image R@1 − parallel speech→image R@5"]
    with pytest.raises(KeyError, match="no figure 'parallel speech→text R@5'"):
        compare(a, b, ["parallel speech→text R@5"])
    r = relative(b, "parallel speech→image R@5", a, "parallel speech→image R@5", n_resamples=100)
    assert r["value"] == pytest.approx(diff["b"] / diff["a"]) and r["ci95"][0] <= r["value"] <= r["ci95"][1]


def test_the_report_lays_out_models_clip_ratios_and_comparisons():
    split, rng = _split(seed=5)
    text = split.image_embeds + 0.2 * rng.normal(size=split.image_embeds.shape)
    clip = retrieval_counts("CLIP", text, split, modality="text")
    captions = [f"caption {i % 7}" for i in range(len(split.item_ids))]
    counts = {"parallel": model_counts(split, text, captions)}
    record = report(counts, clip, [("parallel", "parallel", "parallel speech→image R@10")],
                    [("parallel", "parallel speech→image R@10")], n_resamples=50)  # fmt: skip
    bar = ratio(*clip["CLIP text→image R@10"])
    key = "parallel parallel speech→image R@10 / CLIP text→image R@10"
    speech = ratio(*counts["parallel"]["parallel speech→image R@10"])
    assert record["ratios"][key]["value"] == pytest.approx(speech / bar)
    assert record["clip"]["CLIP text→image R@10"]["value"] == pytest.approx(bar)
    lines = record["markdown"].splitlines()
    assert lines[2].startswith("| CLIP (written caption) | text | ") and f"{bar:.3f} [" in lines[2]
    assert lines[3].startswith("| parallel | parallel | ") and lines[3].count("—") == 2  # no keywords
    assert record["resampled"] == "images"


def test_the_no_speech_keyword_guess_names_the_most_frequent_training_subwords():
    train = [[3, 1, 4], [1, 5, 9], [2, 6, 5], [3, 5, 8], [9, 7, 9]]  # 9 ×3, 5 ×3, 1 ×2, 3 ×2, 4 ×1 …
    test = [[9], [4], [7, 8], [5, 1]]
    counts = frequent_subword_counts(np.array([0, 0, 1, 1]), test, train, slots=2)
    num, den = counts["frequent subwords keyword hit top-1"]  # top-1 is 5 (ties broken by id): utterance 3 only
    assert num.tolist() == [0, 2] and den.tolist() == [4, 4]
    num, _ = counts["frequent subwords keyword hit top-5"]  # {5, 9, 1, 3, 2}: utterances 0 and 3
    assert num.tolist() == [2, 2]
