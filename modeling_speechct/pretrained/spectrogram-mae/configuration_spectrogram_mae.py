"""Configuration of AcuLa's own audio tower: a masked-autoencoder ViT on log-mel spectrograms (OPERA-GT-like)."""

from __future__ import annotations

from transformers import PreTrainedConfig


class SpectrogramMAEConfig(PreTrainedConfig):
    r"""
    Configuration of [`SpectrogramMAEModel`]. Defaults: ViT-small (384 wide, 12 layers, 6 heads) on 64-mel
    spectrograms of 8 s at a 10 ms hop (800 frames), 16 × 16 patches → a 4 × 50 grid; a light decoder (2 layers,
    192 wide) reconstructs the masked patches.

    Args:
        num_mel_bins / max_frames: the spectrogram the position table covers (shorter inputs use its first
            columns; longer ones are refused by the model).
        patch_size: `(mel, frames)` extent of a patch.
        mask_ratio_time / mask_ratio_frequency: fractions of the grid's time columns and frequency rows hidden in
            pre-training; a patch is masked when its column or its row is (so at 0.7 / 0.3 about 79 % of patches).
        norm_pix_loss: reconstruct each patch standardised by its own mean and variance (MAE's option).
    """

    model_type = "spectrogram_mae"
    base_config_key = "audio_config"

    num_mel_bins: int = 64
    max_frames: int = 800
    patch_size: list[int] | tuple[int, int] = (16, 16)
    hidden_size: int = 384
    num_hidden_layers: int = 12
    num_attention_heads: int = 6
    intermediate_size: int = 1536
    decoder_hidden_size: int = 192
    decoder_num_layers: int = 2
    decoder_num_heads: int = 4
    mask_ratio_time: float = 0.7
    mask_ratio_frequency: float = 0.3
    norm_pix_loss: bool = False
    hidden_dropout: float = 0.0
    layer_norm_eps: float = 1e-6
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.patch_size = [int(p) for p in self.patch_size]
        problems = []
        if len(self.patch_size) != 2:
            problems.append(f"patch_size must be (mel, frames), got {self.patch_size}")
        elif self.num_mel_bins % self.patch_size[0] or self.max_frames % self.patch_size[1]:
            problems.append(f"num_mel_bins {self.num_mel_bins} and max_frames {self.max_frames} must be multiples of "
                            f"patch_size {self.patch_size}")  # fmt: skip
        for name in ("mask_ratio_time", "mask_ratio_frequency"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name}={getattr(self, name)} must be in [0, 1)")
        if self.hidden_size % self.num_attention_heads or self.decoder_hidden_size % self.decoder_num_heads:
            problems.append("hidden sizes must be multiples of their heads")
        if problems:
            raise ValueError("SpectrogramMAEConfig: " + "; ".join(problems))

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along mel and along time for `max_frames`."""
        return self.num_mel_bins // self.patch_size[0], self.max_frames // self.patch_size[1]
