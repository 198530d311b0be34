"""transformers pipelines for SpeechCT-CLIP: zero-shot CT classification and report ↔ volume retrieval.

    from transformers import pipeline
    classify = pipeline("zero-shot-ct-classification", model="<folder or Hub id>", trust_remote_code=True)
    classify("chest_ct.nii.gz")                                   # the 18 CT-RATE labels, written prompts
    classify(volume, spacing=(1.5, 0.75, 0.75), candidate_labels=["Cardiomegaly", "Emphysema"])
    classify("chest_ct.nii.gz", prompt_audio={"Emphysema": ("emphysema_yes.wav", "emphysema_no.wav")})

    retrieve = pipeline("ct-retrieval", model="<folder or Hub id>", trust_remote_code=True)
    retrieve("spoken_report.wav", gallery=["a.nii.gz", "b.nii.gz"], top_k=1)   # report → volumes
    retrieve("a.nii.gz", gallery=["No effusion.", "Large right pleural effusion."])  # volume → reports

Both are registered with `PIPELINE_REGISTRY` when the package is imported, and a published folder lists them in its
config's `custom_pipelines` (`modeling_speechct.hub.publish.add_pipelines`), so `pipeline(task, model=folder,
trust_remote_code=True)` also works where the package is not installed. Scores are exactly the model's:
`get_ct_features` → prompt embeddings → `zero_shot.pair_probabilities` (the evaluation's own function), and cosine
similarities of the projected embeddings for retrieval. This file is shipped as remote code: relative imports only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from transformers import AutoModel, Pipeline
from transformers.pipelines import PIPELINE_REGISTRY

from .labels import CT_RATE_LABELS
from .zero_shot import (
    DEFAULT_TEMPLATES,
    pair_probabilities,
    prompt_pairs,
    speech_prompt_embeddings,
    text_prompt_embeddings,
)

ZERO_SHOT_TASK = "zero-shot-ct-classification"
RETRIEVAL_TASK = "ct-retrieval"
CT_SUFFIXES = (".nii", ".nii.gz")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aiff", ".aif", ".au", ".opus")
CT_KWARGS = ("spacing", "affine", "rescale_slope", "rescale_intercept", "is_hu", "series_uid")
SPEECH_BATCH = 8


# ---------------------------------------------------------------------------------------------------- inputs


def _kind(item: Any) -> str:
    """'ct', 'speech' or 'text': what an input holds, from its form.

    Dicts say it by key (`{"ct": …, "spacing": …}`, `{"audio"/"array"/"raw": …, "sampling_rate": …}`,
    `{"text": …}`); paths by suffix (.nii / .nii.gz or a DICOM folder: CT; .wav, .flac, …: speech); other strings are
    written reports; arrays and tensors by rank (3-D: a volume, 1-D or channels × samples: a recording)."""
    if isinstance(item, Mapping):
        if "ct" in item or "volume" in item:
            return "ct"
        if "text" in item:
            return "text"
        if any(k in item for k in ("audio", "array", "raw")):
            return "speech"
        raise ValueError(f"input dict with keys {sorted(item)}: expected 'ct', 'text' or 'audio' (+ 'sampling_rate').")
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        lower = path.lower()
        if lower.endswith(CT_SUFFIXES) or os.path.isdir(path):
            return "ct"
        if lower.endswith(AUDIO_SUFFIXES):
            return "speech"
        if isinstance(item, os.PathLike):
            raise ValueError(f"{path}: neither a CT file (.nii, .nii.gz, DICOM folder) nor audio {AUDIO_SUFFIXES}.")
        return "text"
    if hasattr(item, "affine") and hasattr(item, "dataobj"):  # a nibabel image
        return "ct"
    if hasattr(item, "ndim"):
        if item.ndim == 3:
            return "ct"
        if item.ndim in (1, 2):
            return "speech"
        raise ValueError(f"array of shape {tuple(item.shape)}: neither a CT volume (3-D) nor a recording (1-D/2-D).")
    raise TypeError(f"cannot tell what {type(item).__name__} holds: pass a path, an array, a string or a dict.")


def _check_ct_kwargs(caller: str, ct_kwargs: Mapping[str, Any]) -> None:
    """Keyword arguments left over after a pipeline's own must be CT feature-extractor arguments."""
    unknown = set(ct_kwargs) - set(CT_KWARGS)
    if unknown:
        raise TypeError(f"{caller}: unexpected arguments {sorted(unknown)} (CT arguments are {CT_KWARGS}).")


def _split_ct(item: Any, ct_kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """A CT input → (volume, keyword arguments of the CT feature extractor); a dict's own keys win."""
    if isinstance(item, Mapping):
        unknown = set(item) - {"ct", "volume", *CT_KWARGS}
        if unknown:
            raise ValueError(f"CT input dict: unknown keys {sorted(unknown)} (allowed: 'ct'/'volume', {CT_KWARGS}).")
        volume = item["ct"] if "ct" in item else item["volume"]
        return volume, {**ct_kwargs, **{k: v for k, v in item.items() if k in CT_KWARGS}}
    return item, dict(ct_kwargs)


def _recording(item: Any, sampling_rate: int | None) -> tuple[Any, int | None]:
    """A speech input → (path or waveform, its sampling rate): `{"array"/"raw"/"audio": w, "sampling_rate": r}`,
    a path (its file's rate), or a waveform with the call's `sampling_rate`."""
    if isinstance(item, Mapping):
        key = next(k for k in ("audio", "array", "raw") if k in item)
        return item[key], item.get("sampling_rate", sampling_rate)
    if isinstance(item, os.PathLike):
        return os.fspath(item), None
    return item, sampling_rate


def _text(item: Any) -> str:
    return item["text"] if isinstance(item, Mapping) else item


def _item_id(item: Any) -> str | None:
    if isinstance(item, (str, os.PathLike)) and _kind(item) != "text":
        return os.fspath(item)
    if isinstance(item, Mapping) and isinstance(item.get("id"), str):
        return item["id"]
    return None


class _SpeechCTClipPipeline(Pipeline):
    """Shared parts: the processor is the only preprocessing component; embeddings of every modality."""

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.processor is None:
            raise ValueError(
                f"{type(self).__name__} needs the model's SpeechCTClipProcessor: load the pipeline from a folder that "
                "holds one, or pass `processor=`."
            )
        self.model.eval()

    def _to_device(self, batch: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}

    @torch.no_grad()
    def embed(
        self,
        items: Sequence[Any],
        sampling_rate: int | None = None,
        batch_size: int = SPEECH_BATCH,
        **ct_kwargs: Any,
    ) -> torch.Tensor:
        """L2-normalised embeddings `(len(items), projection_dim)` of CT volumes, recordings or written reports (one
        modality per call): compute a retrieval gallery once and pass it as `gallery=` to every query."""
        _check_ct_kwargs("embed", ct_kwargs)
        items = list(items)
        if not items:
            raise ValueError("`items` is empty.")
        kinds = {_kind(item) for item in items}
        if len(kinds) != 1:
            raise ValueError(f"`items` mixes modalities {sorted(kinds)}: embed one modality at a time.")
        kind = kinds.pop()
        out = []
        for start in range(0, len(items), 1 if kind == "ct" else batch_size):
            chunk = items[start : start + (1 if kind == "ct" else batch_size)]
            if kind == "ct":
                volume, kwargs = _split_ct(chunk[0], ct_kwargs)
                inputs = self._to_device(self.processor(ct=volume, ct_kwargs=kwargs))
                out.append(self.model.get_ct_features(inputs["ct_values"]).pooler_output)
            elif kind == "speech":
                recordings = [_recording(item, sampling_rate) for item in chunk]
                inputs = self._to_device(
                    self.processor(audio=[r for r, _ in recordings], sampling_rate=[s for _, s in recordings])
                )
                out.append(
                    self.model.get_speech_features(
                        inputs["speech_values"], inputs.get("speech_attention_mask")
                    ).pooler_output
                )
            else:
                inputs = self._to_device(self.processor(text=[_text(item) for item in chunk]))
                out.append(self.model.get_text_features(**inputs).pooler_output)
        return F.normalize(torch.cat(out).float(), dim=-1).cpu()


# ---------------------------------------------------------------------------------------------------- zero-shot


class ZeroShotCTClassificationPipeline(_SpeechCTClipPipeline):
    """P(finding present) for each candidate label of a CT volume, CT-CLIP's way: per label, a softmax over the
    model's scaled cosine similarities to "{label} is present." and "{label} is not present.".

    Args (call):
        ct: a path (.nii, .nii.gz, DICOM folder), a nibabel image, a 3-D array or tensor in HU (with `spacing` or
            `affine`), a dict `{"ct": volume, "spacing": …}`, or a list of these.
        candidate_labels: the findings to score (default: CT-RATE's 18 labels, or the keys of `prompt_audio`).
        templates: the (present, absent) prompt pair, each with a `{label}` field.
        prompt_audio: spoken prompts instead of written ones, `{label: (present, absent)}`, each side one recording
            or a list of renditions (voices; their normalised embeddings are averaged, as the evaluation does).
            A recording is a path, a waveform with `sampling_rate`, or `{"array": w, "sampling_rate": r}`.
        spacing / affine / rescale_slope / rescale_intercept / is_hu / series_uid: for the CT feature extractor.
        top_k: keep the `top_k` most probable labels.

    Returns a list of `{"label": str, "score": float}` sorted by score (highest first); per input for a list. The
    scores are independent per label (each is a two-way softmax), so they do not sum to one.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._text_prompts: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}
        self._audio_prompts: tuple[Any, tuple, tuple[torch.Tensor, torch.Tensor]] | None = None

    def __call__(self, ct: Any, **kwargs: Any) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        return super().__call__(ct, **kwargs)

    def _sanitize_parameters(
        self,
        candidate_labels: Sequence[str] | None = None,
        templates: Sequence[str] | None = None,
        prompt_audio: Mapping[str, Any] | None = None,
        sampling_rate: int | None = None,
        top_k: int | None = None,
        **ct_kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        _check_ct_kwargs(ZERO_SHOT_TASK, ct_kwargs)
        forward: dict[str, Any] = {}
        for name, value in (
            ("candidate_labels", candidate_labels),
            ("templates", templates),
            ("prompt_audio", prompt_audio),
            ("sampling_rate", sampling_rate),
        ):
            if value is not None:
                forward[name] = value
        return {"ct_kwargs": ct_kwargs} if ct_kwargs else {}, forward, {"top_k": top_k} if top_k is not None else {}

    # -------------------------------------------------------------------------------------------- prompts

    @torch.no_grad()
    def prompt_embeddings(
        self,
        candidate_labels: Sequence[str] | None = None,
        templates: Sequence[str] | None = None,
        prompt_audio: Mapping[str, Any] | None = None,
        sampling_rate: int | None = None,
    ) -> tuple[list[str], torch.Tensor, torch.Tensor, float]:
        """(labels, present embeddings, absent embeddings, logit scale) as the pipeline scores with them: written
        prompts through the text tower with `logit_scale`, spoken ones through the speech tower with
        `speech_logit_scale` (as `eval/zero_shot.py` does). Written prompts are computed once per label set."""
        if prompt_audio is not None:
            if templates is not None:
                raise ValueError("Give `templates` (written prompts) or `prompt_audio` (spoken prompts), not both.")
            labels = list(candidate_labels) if candidate_labels is not None else list(prompt_audio)
            missing = [label for label in labels if label not in prompt_audio]
            if missing:
                raise ValueError(f"`prompt_audio` has no recordings for {missing}.")
            key = (tuple(labels), sampling_rate)
            cached = self._audio_prompts
            if cached is None or cached[0] is not prompt_audio or cached[1] != key:
                cached = (prompt_audio, key, self._speech_prompts(labels, prompt_audio, sampling_rate))
                self._audio_prompts = cached
            positive, negative = cached[2]
            scale = self.model.speech_logit_scale.exp().item()
        else:
            labels = list(candidate_labels) if candidate_labels is not None else list(CT_RATE_LABELS)
            pair = tuple(templates) if templates is not None else DEFAULT_TEMPLATES
            key = (tuple(labels), pair)
            if key not in self._text_prompts:
                self._text_prompts[key] = text_prompt_embeddings(self.model, self.processor, prompt_pairs(labels, pair))
            positive, negative = self._text_prompts[key]
            scale = self.model.logit_scale.exp().item()
        if not labels:
            raise ValueError("`candidate_labels` is empty.")
        if len(set(labels)) != len(labels):
            raise ValueError(f"`candidate_labels` repeats labels: {labels}.")
        return labels, positive, negative, scale

    def _speech_prompts(
        self, labels: list[str], prompt_audio: Mapping[str, Any], sampling_rate: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        nested, voices = [], set()
        for label in labels:
            sides = prompt_audio[label]
            if not isinstance(sides, (list, tuple)) or len(sides) != 2:
                raise ValueError(f"prompt_audio[{label!r}] must be a (present, absent) pair of recordings.")
            renditions = []
            for side in sides:
                side = list(side) if isinstance(side, (list, tuple)) else [side]
                renditions.append([_recording(item, sampling_rate) for item in side])
                voices.add(len(side))
            nested.append(renditions)
        if len(voices) != 1 or 0 in voices:
            raise ValueError(f"every spoken prompt needs the same number of renditions (got {sorted(voices)}).")
        return speech_prompt_embeddings(self.model, self.processor, nested, batch_size=SPEECH_BATCH)

    # -------------------------------------------------------------------------------------------- steps

    def preprocess(self, ct: Any, ct_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        if _kind(ct) != "ct":
            raise ValueError(f"{ZERO_SHOT_TASK} classifies CT volumes; got {type(ct).__name__} ({_kind(ct)}).")
        volume, kwargs = _split_ct(ct, ct_kwargs or {})
        return dict(self.processor(ct=volume, ct_kwargs=kwargs))

    def _forward(self, model_inputs: dict[str, Any], **prompt_kwargs: Any) -> dict[str, Any]:
        labels, positive, negative, scale = self.prompt_embeddings(**prompt_kwargs)
        ct = self.model.get_ct_features(model_inputs["ct_values"]).pooler_output
        probabilities = pair_probabilities(ct, positive.to(ct.device), negative.to(ct.device), scale)
        return {"probabilities": probabilities[0], "labels": labels}

    def postprocess(self, model_outputs: dict[str, Any], top_k: int | None = None) -> list[dict[str, Any]]:
        scores = model_outputs["probabilities"].tolist()
        order = sorted(range(len(scores)), key=lambda j: -scores[j])  # stable: ties keep the label order
        result = [{"label": model_outputs["labels"][j], "score": scores[j]} for j in order]
        return result[:top_k] if top_k is not None else result


# ---------------------------------------------------------------------------------------------------- retrieval


class CTRetrievalPipeline(_SpeechCTClipPipeline):
    """Rank a gallery by cosine similarity to a query in the shared embedding space.

    A spoken report (a wav path, a waveform with `sampling_rate`, `{"array": w, "sampling_rate": r}`) or a written
    one (a string, `{"text": …}`) ranks a gallery of CT volumes; a CT volume ranks a gallery of reports (spoken or
    written).

    Args (call):
        query: one query, or a list of them.
        gallery: the items to rank (paths, arrays, strings, dicts as above), or their embeddings `(N, dim)` from
            `pipe.embed(items)` (computed once, reused by every query).
        gallery_ids: names for the gallery items (default: their paths where they are paths).
        top_k: how many to return (default: all).
        sampling_rate: of waveform inputs given as arrays.
        spacing / affine / rescale_slope / rescale_intercept / is_hu / series_uid: for CT inputs.

    Returns a list of `{"score": cosine similarity, "index": position in the gallery, "id": gallery_ids[index]}`
    sorted by score (highest first; ties keep gallery order); per query for a list.
    """

    def __call__(
        self,
        query: Any,
        gallery: Any = None,
        gallery_ids: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]] | list[list[dict[str, Any]]]:
        if gallery is None:
            raise ValueError(f"{RETRIEVAL_TASK}: pass `gallery=` (items to rank, or their embeddings).")
        ct_kwargs = {k: kwargs[k] for k in CT_KWARGS if k in kwargs}
        embeds, ids, kind = self._gallery(gallery, gallery_ids, kwargs.get("sampling_rate"), ct_kwargs)
        return super().__call__(query, gallery_embeds=embeds, gallery_ids=ids, gallery_kind=kind, **kwargs)

    def _gallery(
        self, gallery: Any, gallery_ids: Sequence[Any] | None, sampling_rate: int | None, ct_kwargs: dict[str, Any]
    ) -> tuple[torch.Tensor, list[Any], str | None]:
        if isinstance(gallery, (torch.Tensor, np.ndarray)) and gallery.ndim == 2:
            embeds, kind, ids = torch.as_tensor(gallery).float(), None, [None] * len(gallery)
            if embeds.shape[1] != self.model.config.projection_dim:
                raise ValueError(
                    f"gallery embeddings have dim {embeds.shape[1]}; the model's is {self.model.config.projection_dim}."
                )
            embeds = F.normalize(embeds, dim=-1)
        else:
            items = list(gallery)
            embeds = self.embed(items, sampling_rate=sampling_rate, **ct_kwargs)
            kind, ids = _kind(items[0]), [_item_id(item) for item in items]
        if gallery_ids is not None:
            if len(gallery_ids) != len(embeds):
                raise ValueError(f"`gallery_ids` has {len(gallery_ids)} entries for {len(embeds)} gallery items.")
            ids = list(gallery_ids)
        return embeds, ids, kind

    def _sanitize_parameters(
        self,
        gallery_embeds: torch.Tensor | None = None,
        gallery_ids: list[Any] | None = None,
        gallery_kind: str | None = None,
        top_k: int | None = None,
        sampling_rate: int | None = None,
        **ct_kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        _check_ct_kwargs(RETRIEVAL_TASK, ct_kwargs)
        preprocess = {"ct_kwargs": ct_kwargs, "gallery_kind": gallery_kind}
        if sampling_rate is not None:
            preprocess["sampling_rate"] = sampling_rate
        forward = {"gallery_embeds": gallery_embeds} if gallery_embeds is not None else {}
        postprocess: dict[str, Any] = {"gallery_ids": gallery_ids} if gallery_ids is not None else {}
        if top_k is not None:
            postprocess["top_k"] = top_k
        return preprocess, forward, postprocess

    def preprocess(
        self,
        query: Any,
        ct_kwargs: dict[str, Any] | None = None,
        gallery_kind: str | None = None,
        sampling_rate: int | None = None,
    ) -> dict[str, Any]:
        kind = _kind(query)
        if gallery_kind is not None and (kind == "ct") == (gallery_kind == "ct"):
            raise ValueError(
                f"{RETRIEVAL_TASK}: a {kind} query needs a gallery of "
                f"{'reports (speech or text)' if kind == 'ct' else 'CT volumes'}, got {gallery_kind}."
            )
        if kind == "ct":
            volume, kwargs = _split_ct(query, ct_kwargs or {})
            return {"kind": kind, **self.processor(ct=volume, ct_kwargs=kwargs)}
        if kind == "speech":
            recording, rate = _recording(query, sampling_rate)
            return {"kind": kind, **self.processor(audio=recording, sampling_rate=rate)}
        return {"kind": kind, **self.processor(text=[_text(query)])}

    def _forward(self, model_inputs: dict[str, Any], gallery_embeds: torch.Tensor | None = None) -> dict[str, Any]:
        kind = model_inputs.pop("kind")
        if kind == "ct":
            query = self.model.get_ct_features(model_inputs["ct_values"]).pooler_output
        elif kind == "speech":
            query = self.model.get_speech_features(
                model_inputs["speech_values"], model_inputs.get("speech_attention_mask")
            ).pooler_output
        else:
            query = self.model.get_text_features(**model_inputs).pooler_output
        query = F.normalize(query.float(), dim=-1)
        return {"scores": (query @ gallery_embeds.to(query.device).T)[0]}

    def postprocess(
        self, model_outputs: dict[str, Any], gallery_ids: list[Any] | None = None, top_k: int | None = None
    ) -> list[dict[str, Any]]:
        scores = model_outputs["scores"].tolist()
        order = sorted(range(len(scores)), key=lambda j: -scores[j])
        ids = gallery_ids if gallery_ids is not None else [None] * len(scores)
        result = [{"score": scores[j], "index": j, "id": ids[j]} for j in order]
        return result[:top_k] if top_k is not None else result


# ---------------------------------------------------------------------------------------------------- registry

PIPELINES: dict[str, type[Pipeline]] = {
    ZERO_SHOT_TASK: ZeroShotCTClassificationPipeline,
    RETRIEVAL_TASK: CTRetrievalPipeline,
}


def register_pipelines() -> None:
    """Register both tasks with transformers (`pipeline(task, model=…)`); idempotent and quiet when this module is
    loaded twice (installed and as remote code): the first registration stays."""
    for task, pipeline_class in PIPELINES.items():
        if task not in PIPELINE_REGISTRY.supported_tasks:
            PIPELINE_REGISTRY.register_pipeline(task, pipeline_class=pipeline_class, pt_model=AutoModel)
        else:  # what `register_pipeline` sets, so `Pipeline.save_pretrained` works for this class as well
            pipeline_class._registered_impl = {task: {"impl": pipeline_class, "pt": (AutoModel,)}}


def custom_pipelines_config() -> dict[str, dict[str, Any]]:
    """The `custom_pipelines` entry of a config.json (as `Pipeline.save_pretrained` writes it), for both tasks."""
    module = __name__.rsplit(".", 1)[-1]
    return {task: {"impl": f"{module}.{cls.__name__}", "pt": ["AutoModel"]} for task, cls in PIPELINES.items()}


register_pipelines()

__all__ = [
    "PIPELINES",
    "RETRIEVAL_TASK",
    "ZERO_SHOT_TASK",
    "CTRetrievalPipeline",
    "ZeroShotCTClassificationPipeline",
    "custom_pipelines_config",
    "register_pipelines",
]
