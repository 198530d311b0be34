"""The Gradio demo (a Hub Space or `python model_cards/demo/app.py`): drop a CT, speak a report, read the findings.

What it shows, all through the package's pipelines so that the page and `pipeline(...)` agree number for number:
the uploaded volume in three orthogonal views (to check it was read the right way up), the 18 CT-RATE findings with
P(present) — scored with spoken prompts when the model's speech tower is the point (voice-native, synthesised once at
start-up by the offline TTS engines) or written ones — the similarity of the spoken report to the volume and, when a
gallery is configured, the gallery volumes closest to the spoken report.

Uploads are untrusted: size-limited by Gradio (`max_file_size`), zips checked by `uploads.extract_zip`, each request
works in its own temporary folder that is deleted afterwards, and the server exposes no path of ours.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..labels import CT_RATE_LABELS
from .uploads import MAX_UPLOAD_BYTES, orthogonal_views, read_upload

if TYPE_CHECKING:
    from .sound_search import SoundSearchBackend

FINDINGS_COLUMNS = ["finding", "P(present)"]
GALLERY_COLUMNS = ["rank", "volume", "similarity"]


class DemoBackend:
    """Model, pipelines, prompts and gallery embeddings, loaded once; `analyse` serves one request."""

    def __init__(
        self,
        model: str | os.PathLike,
        prompts: str = "spoken",
        gallery: list[str] | None = None,
        prompt_dir: str | os.PathLike | None = None,
        num_voices: int = 2,
    ):
        from transformers import pipeline

        from .. import pipeline_speechct_clip  # noqa: F401  (registers the tasks)

        if prompts not in ("spoken", "written"):
            raise ValueError(f"prompts must be 'spoken' or 'written', got {prompts!r}.")
        self.classify = pipeline("zero-shot-ct-classification", model=str(model), trust_remote_code=True)
        self.retrieve = pipeline("ct-retrieval", model=str(model), trust_remote_code=True)
        self.prompt_audio = None
        if prompts == "spoken":
            from ..data.spoken_prompts import synthesize_prompts
            from ..zero_shot import prompt_pairs

            folder = Path(prompt_dir or tempfile.mkdtemp(prefix="speechct-prompts-"))
            paths = synthesize_prompts(prompt_pairs(CT_RATE_LABELS), folder, num_voices)
            self.prompt_audio = {label: (paths[i][0], paths[i][1]) for i, label in enumerate(CT_RATE_LABELS)}
        self.gallery = list(gallery or [])
        self.gallery_embeds = self.retrieve.embed(self.gallery) if self.gallery else None

    def analyse(self, ct_path: str | None, audio_path: str | None) -> tuple[np.ndarray, list[list], str, list[list]]:
        """(views, findings rows, report ↔ volume line, closest gallery volumes) for one upload."""
        if not ct_path:
            raise ValueError("Upload a CT volume (.nii, .nii.gz, or a zipped DICOM series) first.")
        workdir = Path(tempfile.mkdtemp(prefix="speechct-upload-"))
        try:
            raw = read_upload(ct_path, workdir)
            volume = {"ct": raw.array, "affine": raw.affine, "spacing": raw.spacing}
            if raw.already_hu or (raw.slope, raw.intercept) != (1.0, 0.0):
                volume.update(rescale_slope=raw.slope, rescale_intercept=raw.intercept, is_hu=bool(raw.already_hu))
            volume = {k: v for k, v in volume.items() if v is not None}
            views = orthogonal_views(raw)
            scores = self.classify(volume, prompt_audio=self.prompt_audio)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        findings = [[s["label"], round(float(s["score"]), 4)] for s in scores]
        match, closest = "", []
        if audio_path:
            (ct_embed,) = self.retrieve.embed([volume])
            (speech_embed,) = self.retrieve.embed([audio_path])
            similarity = float(np.dot(_unit(ct_embed), _unit(speech_embed)))
            match = f"Cosine similarity of the spoken report to this volume: {similarity:.3f}"
            if self.gallery_embeds is not None:
                ranked = self.retrieve(audio_path, gallery=self.gallery_embeds, gallery_ids=self.gallery,
                                       top_k=min(5, len(self.gallery)))  # fmt: skip
                closest = [[i + 1, Path(r["id"]).name, round(float(r["score"]), 4)] for i, r in enumerate(ranked)]
        return views, findings, match, closest


def _unit(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x)


def build_demo(backend: DemoBackend, title: str = "SpeechCT-CLIP", scenes: Any = None,
               sounds: SoundSearchBackend | None = None):  # fmt: skip
    """The Gradio page around `backend` (not launched); with `scenes` (a `scene_search.SceneSearchBackend`) a
    second tab searches scenes by a spoken description (SpeechCLIP); with `sounds` (a
    `sound_search.SoundSearchBackend`) another one places an auscultation recording among report phrases and
    reads its linear probes (AcuLa)."""
    import gradio as gr

    def run(ct_file, audio_file):
        try:
            return backend.analyse(ct_file, audio_file)
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err)) from err

    with gr.Blocks(title=title) as demo:
        gr.Markdown(
            f"# {title}\nUpload a chest CT (`.nii.gz`, or a zipped DICOM series) and, optionally, a spoken report. "
            "Research demo: not a medical device, not for diagnosis."
        )
        with gr.Tabs():
            with gr.Tab("CT (SpeechCT-CLIP)", elem_id="ct-tab"):
                with gr.Row():
                    ct_file = gr.File(label="CT volume", file_types=[".nii", ".gz", ".zip"], type="filepath",
                                      elem_id="ct")  # fmt: skip
                    audio = gr.Audio(label="Spoken report", sources=["upload", "microphone"], type="filepath",
                                     elem_id="audio")  # fmt: skip
                button = gr.Button("Analyse", variant="primary", elem_id="analyse")
                views = gr.Image(label="Axial · coronal · sagittal", elem_id="views")
                match = gr.Markdown(elem_id="match")
                with gr.Row():
                    # Tall enough for all 18 findings: Gradio virtualises rows beyond its height.
                    findings = gr.Dataframe(headers=FINDINGS_COLUMNS, label="Findings", elem_id="findings",
                                            max_height=900)  # fmt: skip
                    closest = gr.Dataframe(headers=GALLERY_COLUMNS, label="Closest gallery volumes", elem_id="closest")
                button.click(run, inputs=[ct_file, audio], outputs=[views, findings, match, closest])
            if scenes is not None:
                from .scene_search import add_scene_search_tab

                add_scene_search_tab(scenes)
            if sounds is not None:
                from .sound_search import add_sound_search_tab

                add_sound_search_tab(sounds)
    return demo


def launch(demo, port: int | None = None, **kwargs: Any):
    """Launch with the upload limit and without exposing any local path."""
    return demo.launch(server_port=port, max_file_size=MAX_UPLOAD_BYTES, allowed_paths=[], **kwargs)


__all__ = ["DemoBackend", "build_demo", "launch"]
