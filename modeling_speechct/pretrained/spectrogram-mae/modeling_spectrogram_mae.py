"""A masked-autoencoder ViT on log-mel spectrograms: AcuLa's default audio tower, whose reconstruction loss on the
masked patches is AcuLa's self-supervised term.

Pre-training masks whole time columns and frequency rows of the patch grid (OPERA-GT's spectrogram masking), the
encoder sees the visible patches only (MAE), and a light decoder fills mask tokens back in; the loss is the mean
squared error over the masked patches alone. As a feature extractor the encoder sees every patch and
`pooler_output` is their mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_outputs import BaseModelOutputWithPooling
from transformers.utils import ModelOutput

from .configuration_spectrogram_mae import SpectrogramMAEConfig
from .validation import require_finite, require_ndim


@dataclass
class SpectrogramMAEOutput(ModelOutput):
    """`loss`: MSE over masked patches; `reconstruction` `(batch, patches, patch_dim)`; `mask` `(batch, patches)`
    True where hidden."""

    loss: torch.Tensor | None = None
    reconstruction: torch.Tensor | None = None
    mask: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def _blocks(width: int, heads: int, depth: int, ffn: int, dropout: float, eps: float) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(width, heads, ffn, dropout, activation="gelu", batch_first=True,
                                       norm_first=True, layer_norm_eps=eps)  # fmt: skip
    return nn.TransformerEncoder(layer, depth, enable_nested_tensor=False)


def patchify(spectrogram: torch.Tensor, patch: tuple[int, int]) -> torch.Tensor:
    """`(batch, mel, frames)` → `(batch, mel/p · frames/q, p · q)`, row-major over (mel, time)."""
    b, m, t = spectrogram.shape
    p, q = patch
    x = spectrogram.reshape(b, m // p, p, t // q, q).permute(0, 1, 3, 2, 4)
    return x.reshape(b, (m // p) * (t // q), p * q)


def grid_mask(batch: int, grid: tuple[int, int], ratio_time: float, ratio_frequency: float,
              generator: torch.Generator | None = None, device: torch.device | None = None,
              ) -> torch.Tensor:  # fmt: skip
    """`(batch, rows · columns)` True where a patch is hidden: `round(ratio · n)` random columns (time) and rows
    (frequency) per example, a patch hidden when either is. Every example hides the same number of each, so the
    visible patches form equal-length sequences."""
    rows, cols = grid
    n_cols, n_rows = round(ratio_time * cols), round(ratio_frequency * rows)
    col_rank = torch.rand(batch, cols, generator=generator).argsort(dim=1).argsort(dim=1)
    row_rank = torch.rand(batch, rows, generator=generator).argsort(dim=1).argsort(dim=1)
    mask = (row_rank[:, :, None] < n_rows) | (col_rank[:, None, :] < n_cols)
    return mask.reshape(batch, rows * cols).to(device)


class SpectrogramMAEPreTrainedModel(PreTrainedModel):
    config: SpectrogramMAEConfig
    config_class = SpectrogramMAEConfig
    base_model_prefix = "spectrogram_mae"
    main_input_name = "input_features"
    input_modalities = ("audio",)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, SpectrogramMAEModel):
            init.normal_(module.position_embeddings, std=self.config.initializer_range)
            init.normal_(module.decoder_position_embeddings, std=self.config.initializer_range)
            init.normal_(module.mask_token, std=self.config.initializer_range)


class SpectrogramMAEModel(SpectrogramMAEPreTrainedModel):
    """Input `input_features` `(batch, mel, frames)` (a log-mel spectrogram; frames a multiple of the patch width,
    at most `max_frames`). `forward` gives features; `reconstruction_loss` is the self-supervised term."""

    def __init__(self, config: SpectrogramMAEConfig):
        super().__init__(config)
        p, q = config.patch_size
        rows, cols = config.grid
        self.patch_embeddings = nn.Linear(p * q, config.hidden_size)
        self.position_embeddings = nn.Parameter(torch.zeros(1, rows * cols, config.hidden_size))
        self.encoder = _blocks(config.hidden_size, config.num_attention_heads, config.num_hidden_layers,
                               config.intermediate_size, config.hidden_dropout, config.layer_norm_eps)  # fmt: skip
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder_embed = nn.Linear(config.hidden_size, config.decoder_hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.decoder_position_embeddings = nn.Parameter(torch.zeros(1, rows * cols, config.decoder_hidden_size))
        self.decoder = _blocks(config.decoder_hidden_size, config.decoder_num_heads, config.decoder_num_layers,
                               4 * config.decoder_hidden_size, 0.0, config.layer_norm_eps)  # fmt: skip
        self.decoder_norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.decoder_pred = nn.Linear(config.decoder_hidden_size, p * q)
        self.post_init()

    def _patches(self, input_features: torch.Tensor) -> tuple[torch.Tensor, int]:
        require_ndim("input_features", input_features, 3, "(batch, mel, frames)")
        require_finite("input_features", input_features)
        cfg = self.config
        mel, frames = input_features.shape[1:]
        if mel != cfg.num_mel_bins or frames % cfg.patch_size[1] or frames > cfg.max_frames:
            raise ValueError(
                f"input_features: expected (batch, {cfg.num_mel_bins}, frames) with frames a multiple of "
                f"{cfg.patch_size[1]} and ≤ {cfg.max_frames}, got {tuple(input_features.shape)}"
            )
        columns = frames // cfg.patch_size[1]
        return patchify(input_features, tuple(cfg.patch_size)), columns

    def _positions(self, table: torch.Tensor, columns: int) -> torch.Tensor:
        rows, cols = self.config.grid
        return table.reshape(1, rows, cols, -1)[:, :, :columns].reshape(1, rows * columns, -1)

    def forward(self, input_features: torch.Tensor, **kwargs) -> BaseModelOutputWithPooling:
        patches, columns = self._patches(input_features)
        x = self.patch_embeddings(patches) + self._positions(self.position_embeddings, columns)
        hidden = self.norm(self.encoder(x))
        return BaseModelOutputWithPooling(last_hidden_state=hidden, pooler_output=hidden.mean(dim=1))

    def reconstruction_loss(self, input_features: torch.Tensor, mask: torch.Tensor | None = None,
                            generator: torch.Generator | None = None) -> SpectrogramMAEOutput:  # fmt: skip
        """Mask (or take `mask`, `(batch, patches)` True = hidden, the same count per row), encode the visible
        patches, decode all, and score the masked patches only."""
        cfg = self.config
        patches, columns = self._patches(input_features)
        batch, n, _ = patches.shape
        if mask is None:
            mask = grid_mask(batch, (cfg.grid[0], columns), cfg.mask_ratio_time, cfg.mask_ratio_frequency, generator,
                             patches.device)  # fmt: skip
        if mask.shape != (batch, n) or len(set(mask.sum(dim=1).tolist())) != 1 or mask.all():
            raise ValueError(f"mask: expected (batch, patches) = {(batch, n)} hiding the same number < {n} per row.")
        x = self.patch_embeddings(patches) + self._positions(self.position_embeddings, columns)
        visible = x[~mask].reshape(batch, -1, x.shape[-1])
        encoded = self.norm(self.encoder(visible))
        tokens = self.mask_token.expand(batch, n, -1).clone()
        tokens[~mask] = self.decoder_embed(encoded).reshape(-1, tokens.shape[-1])
        decoded = self.decoder(tokens + self._positions(self.decoder_position_embeddings, columns))
        prediction = self.decoder_pred(self.decoder_norm(decoded))
        target = patches
        if cfg.norm_pix_loss:
            target = (target - target.mean(-1, keepdim=True)) / (target.var(-1, keepdim=True) + 1e-6).sqrt()
        per_patch = (prediction - target).square().mean(dim=-1)
        loss = (per_patch * mask).sum() / mask.sum()
        return SpectrogramMAEOutput(loss=loss, reconstruction=prediction, mask=mask, last_hidden_state=encoded)
