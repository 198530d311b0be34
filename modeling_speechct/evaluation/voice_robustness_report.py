"""The table of a voice-robustness record (`voice_robustness.run_voice_robustness`), as Markdown: one row per
figure — held-out voice, training voice, their ratio with its 95 % interval, the ratio above chance — and PASS or
FAIL against the targets, judged on the point estimates (the intervals say how sure that verdict is)."""

from __future__ import annotations

from typing import Any

from .voice_robustness_figures import TARGET_CROSS_VOICE, TARGET_RATIO

TITLES = {
    "speech_text_R@1": "speech → text R@1 (among {n} reports)",
    "speech_text_R@5": "speech → text R@5 (among {n} reports)",
    "speech_text_cosine": "mean cos(speech, text of the same report)",
    "speech_ct_R@5": "speech → CT R@5 (among {n} volumes)",
    "speech_ct_R@10": "speech → CT R@10 (among {n} volumes)",
    "zero_shot_auroc": "zero-shot mean AUROC, spoken prompts ({volumes} volumes)",
    "cross_voice_cosine": "cos(voice A, voice B) of the same report¹",
    "demo_top5": "demo: own volume in top 5 (gallery of {m})",
}


def _number(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _with_ci(entry: dict[str, Any]) -> str:
    low, high = entry.get("ci95") or (None, None)
    if low is None:
        return _number(entry["value"])
    return f"{_number(entry['value'])} [{_number(low)}, {_number(high)}]"


def _verdict(passed: bool | None) -> str:
    return "—" if passed is None else ("PASS" if passed else "FAIL")


def markdown(record: dict[str, Any]) -> str:
    """The record's table and the notes needed to read it."""
    n, m = len(record["reports"]), len(record["demo_positions"]["held_out"])
    held = ", ".join(record["voices"]["held_out"]["voices"])
    head = ["figure", "chance", f"held-out ({held})", "training voices", "2nd training voice",
            "ratio held-out / training", "ratio above chance", f"ratio ≥ {TARGET_RATIO:.2f}",
            f"cos ≥ {TARGET_CROSS_VOICE:.2f}"]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for key, title in TITLES.items():
        figure = record["figures"][key]
        cells = [
            title.format(n=n, m=m, volumes=record["zero_shot_volumes"]),
            _number(figure["chance"]),
            _with_ci(figure["held_out"]),
            _with_ci(figure["training"]),
            _number(figure.get("training_2", {}).get("value")),
            _with_ci(figure["ratio"]),
            _number(figure["ratio_above_chance"]),
            _verdict(figure["pass_ratio"]),
            _verdict(figure.get("pass_cosine")),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    training = ", ".join(f"{k} {v}" for k, v in record["voices"]["training"]["backends"].items())
    second = ", ".join(f"{k} {v}" for k, v in record["voices"]["training_2"]["backends"].items())
    notes = [
        "",
        f"Model `{record['config']['model']}`, {record['config']['split']} split of `{record['config']['data_dir']}`: "
        f"the first {n} reports, spoken by the held-out engine ({held}) and in training voices ({training}; "
        f"{record['voices']['training']['source']}); 2nd training voice: {second}.",
        "¹ held-out column: cos(held-out voice, training voice); training column: cos(training voice, 2nd training "
        "voice).",
        f"Zero-shot: prompts spoken by {', '.join(record['prompt_engines']['held_out'])} vs by "
        f"{', '.join(record['prompt_engines']['training'])} ({_prompt_words(record['config'])}, averaged). "
        "Ratio above chance: (held-out − chance) / (training − chance).",
        f"95 % percentile bootstrap intervals ({record['config']['n_resamples']} resamples of reports, or of volumes "
        "for zero-shot; the same draws for both voices and the ratio). PASS/FAIL on the point estimates.",
        f"Wall time: {record['timings_s']['total']:.0f} s.",
    ]
    return "\n".join(lines + notes) + "\n"


def _prompt_words(config: dict) -> str:
    """How the zero-shot prompts were spoken (records written before `prompts` existed used the template pair)."""
    if config.get("prompts", "template") == "template":
        return f"CT-CLIP's pair, {config['prompt_voices']} renditions each"
    return f"{config.get('prompt_sentences', 4)} sentences of the training reports per side, each spoken once"
