"""The main job's "share of the gap recovered": (distilled − naive) / (text − naive), and n/a without a gap."""

import math

from scripts import load_script

run_benchmark = load_script("train/run_benchmark.py")


def _results(text, naive, distilled):
    names = ("text teacher", "speech, naive (λ=0)", "speech, distilled")
    return {name: {"auroc": value} for name, value in zip(names, (text, naive, distilled), strict=True)}


def test_the_share_is_the_recovered_fraction_of_the_gap():
    assert math.isclose(run_benchmark.recovered(_results(0.70, 0.60, 0.66), "auroc"), 0.6)
    assert run_benchmark.share(0.6) == "60%"


def test_no_gap_gives_no_share_rather_than_a_huge_percentage():
    value = run_benchmark.recovered(_results(0.337, 0.336, 0.375), "auroc")  # the F1 (val threshold) of a run
    assert math.isnan(value) and run_benchmark.share(value).startswith("n/a")
    assert math.isnan(run_benchmark.recovered(_results(0.55, 0.60, 0.62), "auroc"))  # a teacher below the student
