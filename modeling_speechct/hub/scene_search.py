"""The demo's SpeechCLIP tab: speak or upload a description, see the closest scenes and the spoken keywords.

Loaded once per page: a saved SpeechCLIP model (with its processor) and a gallery of images, embedded by the
model's frozen CLIP. A request embeds the recording with the model's retrieval branch (parallel when the mode has
one, else the cascaded keywords' text embedding) and ranks the gallery by cosine; a cascaded or hybrid model also
shows its keywords (each slot's nearest CLIP subword, with its cosine).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

KEYWORD_COLUMNS = ["slot", "keyword", "cosine"]


class SceneSearchBackend:
    """Model, processor and gallery embeddings, loaded once; `search` serves one recording."""

    def __init__(self, model: str | os.PathLike, gallery: list[str | os.PathLike], batch_size: int = 64):
        from PIL import Image

        from ..modeling_speechclip import SpeechClipModel
        from ..processing_speechclip import SpeechClipProcessor
        from ..training.lora import from_pretrained_with_adapter

        if not gallery:
            raise ValueError("SceneSearchBackend: the gallery holds no image.")
        self.model = from_pretrained_with_adapter(SpeechClipModel, model).eval()
        self.processor = SpeechClipProcessor.from_pretrained(model)
        self.gallery = [str(p) for p in gallery]
        embeds = []
        with torch.no_grad():
            for start in range(0, len(self.gallery), batch_size):
                images = []
                for path in self.gallery[start : start + batch_size]:
                    with Image.open(path) as image:
                        images.append(image.convert("RGB"))
                pixels = self.processor(images=images)["pixel_values"]
                embeds.append(self.model.get_image_features(pixels).pooler_output.double().numpy())
        self.gallery_embeds = _unit(np.concatenate(embeds))

    @property
    def branch(self) -> str:
        return "parallel" if self.model.config.uses_parallel else "cascaded"

    @torch.no_grad()
    def search(self, audio_path: str | None, top_k: int = 5) -> tuple[list[tuple[str, str]], list[list[Any]]]:
        """`([(image path, "rank. name · cosine")] best first, [[slot, keyword, cosine]])` for one recording."""
        if not audio_path:
            raise ValueError("Record or upload a spoken description first.")
        batch = self.processor(audio=[audio_path])
        speech = self.model.get_speech_features(batch["speech_values"], batch.get("speech_attention_mask"))
        query = _unit(getattr(speech, f"{self.branch}_embeds").double().numpy())[0]
        scores = self.gallery_embeds @ query
        order = np.argsort(-scores, kind="stable")[: min(top_k, len(self.gallery))]
        ranked = [(self.gallery[i], f"{n + 1}. {Path(self.gallery[i]).name} · {scores[i]:.3f}")
                  for n, i in enumerate(order)]  # fmt: skip
        keywords: list[list[Any]] = []
        if self.model.quantizer is not None:
            ids, cosines, mask = self.model.get_keywords(batch["speech_values"], batch.get("speech_attention_mask"),
                                                         top_k=1)  # fmt: skip
            words = self.processor.decode_keywords(ids[..., 0].masked_fill(~mask, -1))[0]
            real = [float(c) for c, m in zip(cosines[0, :, 0], mask[0], strict=True) if m]
            keywords = [[n + 1, word, round(c, 3)] for n, (word, c) in enumerate(zip(words, real, strict=True))]
        return ranked, keywords


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def add_scene_search_tab(backend: SceneSearchBackend) -> None:
    """The tab's widgets inside the caller's `gr.Blocks` / `gr.Tabs` context."""
    import gradio as gr

    def run(audio_file):
        try:
            return backend.search(audio_file)
        except (ValueError, FileNotFoundError) as err:
            raise gr.Error(str(err)) from err

    with gr.Tab("Scenes (SpeechCLIP)", elem_id="scenes-tab"):
        gr.Markdown(f"Describe a scene aloud; the {len(backend.gallery)} gallery images are ranked by the model's "
                    f"{backend.branch} branch.")  # fmt: skip
        audio = gr.Audio(label="Spoken description", sources=["upload", "microphone"], type="filepath",
                         elem_id="scene-audio")  # fmt: skip
        button = gr.Button("Search", variant="primary", elem_id="scene-search")
        scenes = gr.Gallery(label="Closest scenes", columns=5, elem_id="scenes")
        keywords = gr.Dataframe(headers=KEYWORD_COLUMNS, label="Spoken keywords", elem_id="keywords")
        button.click(run, inputs=[audio], outputs=[scenes, keywords])


__all__ = ["SceneSearchBackend", "add_scene_search_tab"]
