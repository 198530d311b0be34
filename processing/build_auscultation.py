"""Build AcuLa's embedded auscultation benchmark in the AcuLa manifest layout (no download).

    python processing/build_auscultation.py --out data/auscultation --num-patients 400 --seed 0

Procedural lung, heart and cough recordings of sampled patients (latent diagnosis, symptoms, age, device, noise),
with acoustics-only and metadata-dependent probe tasks. Re-running with the same arguments keeps what is built (an
interrupted build resumes); another seed or size into the same folder is refused. Read it with
`modeling_speechct.data.auscultation.manifest.read_manifest(out)`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from modeling_speechct.data.auscultation.benchmark import AuscultationConfig, build_auscultation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("data/auscultation"), help="dataset root")
    parser.add_argument("--num-patients", type=int, default=AuscultationConfig.num_patients)
    parser.add_argument("--recordings-per-patient", type=int, default=AuscultationConfig.recordings_per_patient)
    parser.add_argument("--seed", type=int, default=AuscultationConfig.seed)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args()
    config = AuscultationConfig(out=args.out, num_patients=args.num_patients,
                                recordings_per_patient=args.recordings_per_patient, seed=args.seed)  # fmt: skip
    summary = build_auscultation(config, progress=not args.no_progress)
    print(f"{summary['recordings']} recordings of {summary['patients']} patients in {summary['root']} "
          f"({summary['written']} written, {summary['kept']} kept, {summary['seconds']} s)")  # fmt: skip
    print(json.dumps({"splits": summary["splits"], "labels_pos_neg": summary["labels_pos_neg"]}))


if __name__ == "__main__":
    main()
