"""The Hub side: model cards, publishing (export + upload), the demo and its upload handling, and converters of
third-party checkpoints (CT-CLIP, Whisper in CTranslate2 format) into this package's folders."""
