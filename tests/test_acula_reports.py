"""Reports from metadata: the generator never sees an excluded field, a report naming an excluded value or a probe
class is refused, reports are generated once and stored beside the manifest."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from modeling_speechct.data.auscultation.manifest import ProbeTask, Recording, read_manifest, write_manifest
from modeling_speechct.data.auscultation.report_template import ReportTemplate
from modeling_speechct.data.auscultation.reports import (
    INSTRUCTION,
    LeakageError,
    check_no_leak,
    generate_reports,
    reports_for,
    template_generator,
    write_reports,
)

TEMPLATE = ReportTemplate(
    dataset="toy",
    opening="Lung auscultation.",
    sentences=(("age", "The patient is {value} years old."), ("site", "Recorded at the {value}."),
               ("diagnosis", "Known {value}.")),
)  # fmt: skip
EXCLUDED = ["diagnosis", "wheeze"]


def _folder(tmp_path: Path) -> Path:
    rows = []
    for i, (patient, split, diagnosis) in enumerate([("p1", "train", "COPD"), ("p2", "test", "healthy")]):
        wav = tmp_path / f"r{i}.wav"
        sf.write(wav, np.random.default_rng(i).normal(0, 0.1, 4000), 4000)
        rows.append(Recording(wav, patient, split, "toy", {"age": str(60 + i), "site": "trachea",
                                                           "diagnosis": diagnosis}, {"wheeze": i % 2}))  # fmt: skip
    write_manifest(tmp_path, rows, [ProbeTask("wheeze", "wheeze", "wheezes", "acoustics")], EXCLUDED)
    return tmp_path


def test_the_template_report_leaves_excluded_fields_out(tmp_path):
    recordings = read_manifest(_folder(tmp_path))
    reports = generate_reports(recordings, template_generator(TEMPLATE), EXCLUDED)
    assert reports[0] == "Lung auscultation. The patient is 60 years old. Recorded at the trachea."
    assert all("COPD" not in r and "healthy" not in r for r in reports)


def test_a_generator_sees_only_visible_fields_and_a_leaking_one_is_refused(tmp_path):
    recordings = read_manifest(_folder(tmp_path))
    seen = []

    def honest(metadata, instruction):
        seen.append((dict(metadata), instruction))
        return "An adult patient."

    generate_reports(recordings, honest, EXCLUDED)
    assert all("diagnosis" not in m for m, _ in seen) and seen[0][1] == INSTRUCTION
    with pytest.raises(LeakageError, match=r"names 'COPD', the value of excluded field 'diagnosis'"):
        generate_reports(recordings, lambda m, i: "Patient with copd, age 60.", EXCLUDED)
    with pytest.raises(LeakageError, match="a probe task's class"):
        generate_reports(recordings, lambda m, i: "No wheezes heard.", EXCLUDED, forbidden=["wheezes"])
    check_no_leak("COPDX-like text", recordings[0], EXCLUDED)  # whole words only: no false alarm


def test_reports_are_written_once_and_read_back_checked(tmp_path):
    root = _folder(tmp_path)
    recordings = read_manifest(root)
    calls = []

    def counting(metadata, instruction):
        calls.append(1)
        return f"Patient aged {metadata['age']}."

    write_reports(root, recordings, counting, EXCLUDED)
    write_reports(root, recordings, counting, EXCLUDED)  # already there: nothing generated again
    assert len(calls) == 2
    assert reports_for(root, recordings, EXCLUDED) == ["Patient aged 60.", "Patient aged 61."]
    (root / "acula_reports.csv").write_text("recording,report\nr0.wav,Known COPD.\n")
    with pytest.raises(LeakageError):
        reports_for(root, recordings[:1], EXCLUDED)
    with pytest.raises(KeyError, match=r"no report for r1\.wav"):
        reports_for(root, recordings[1:], EXCLUDED)
