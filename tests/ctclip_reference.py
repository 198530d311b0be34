"""An independent re-statement of CT-CLIP v2's `CTCLIP(CTViT, BertModel)` forward, used as the converter's oracle.

Written from CT-CLIP's published design (not its code): the module tree and parameter names are CT-CLIP's, so
its `state_dict()` has CT-CLIP's keys, and the arithmetic follows CT-CLIP's einsum formulation step by step —
including its quirks (keys/values read the un-normalised stream; the temporal PEG reshapes (b·h·w, t) tokens as
(b, t, h, w); VQ-VAE decoder heads and CLOOB projections that exist but are unused).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertModel


class GammaLayerNorm(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(dim))
        self.register_buffer("beta", torch.zeros(dim))

    def forward(self, x):
        return F.layer_norm(x, x.shape[-1:], self.gamma, self.beta)


class ToTubelets(nn.Module):
    def __init__(self, pt: int, p: int):
        super().__init__()
        self.pt, self.p = pt, p

    def forward(self, x):
        b, c, d, hh, ww = x.shape
        t, h, w = d // self.pt, hh // self.p, ww // self.p
        x = x.reshape(b, c, t, self.pt, h, self.p, w, self.p)
        return torch.einsum("bctqhxwy->bthwcqxy", x).reshape(b, t, h, w, -1)


class Peg(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.dsconv = nn.Conv3d(dim, dim, 3, groups=dim)

    def forward(self, x, shape):
        orig = x.shape
        x = x.reshape(*shape, -1)  # (b, t, h, w, d) whatever the token order
        x = torch.einsum("bthwd->bdthw", x)
        x = self.dsconv(F.pad(x, (1, 1, 1, 1, 2, 0)))
        return torch.einsum("bdthw->bthwd", x).reshape(orig)


class Attention(nn.Module):
    def __init__(self, dim: int, dim_head: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = GammaLayerNorm(dim)
        self.context_norm = GammaLayerNorm(dim)
        self.null_kv = nn.Parameter(torch.randn(heads, 0, dim_head))
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_kv = nn.Linear(dim, dim_head * heads * 2, bias=False)
        self.q_scale = nn.Parameter(torch.ones(dim_head))
        self.k_scale = nn.Parameter(torch.ones(dim_head))
        self.to_out = nn.Linear(dim_head * heads, dim, bias=False)

    def forward(self, x, attn_bias=None):
        kv_input = x
        x = self.norm(x)
        q = self.to_q(x)
        k, v = self.to_kv(kv_input).chunk(2, dim=-1)
        b, n, _ = q.shape
        q, k, v = (t.reshape(b, n, self.heads, -1).permute(0, 2, 1, 3) for t in (q, k, v))
        q = F.normalize(q, dim=-1) * self.q_scale
        k = F.normalize(k, dim=-1) * self.k_scale
        sim = torch.einsum("bhid,bhjd->bhij", q, k) * 8
        if attn_bias is not None:
            sim = sim + attn_bias
        out = torch.einsum("bhij,bhjd->bhid", sim.softmax(dim=-1), v)
        return self.to_out(out.permute(0, 2, 1, 3).reshape(b, n, -1))


class Geglu(nn.Module):
    def forward(self, x):
        x, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * x


def feed_forward(dim: int, inner: int) -> nn.Sequential:
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner * 2, bias=False),
        Geglu(),
        nn.Dropout(0.0),
        nn.Linear(inner, dim, bias=False),
    )


class Transformer(nn.Module):
    def __init__(self, dim, depth, dim_head, heads, inner):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList([Peg(dim), Attention(dim, dim_head, heads), None, feed_forward(dim, inner)])
            for _ in range(depth)
        )
        self.norm_out = GammaLayerNorm(dim)

    def forward(self, x, video_shape, attn_bias=None):
        for peg, attn, _, ff in self.layers:
            x = peg(x, video_shape) + x
            x = attn(x, attn_bias) + x
            x = ff(x) + x
        return self.norm_out(x)


class ContinuousPositionBias(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.net = nn.ModuleList(
            [
                nn.Sequential(nn.Linear(2, dim), nn.LeakyReLU(0.1)),
                nn.Sequential(nn.Linear(dim, dim), nn.LeakyReLU(0.1)),
                nn.Linear(dim, heads),
            ]
        )

    def forward(self, h, w):
        pos = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")).reshape(2, -1).T
        rel = (pos[:, None] - pos[None, :]).float()
        rel = torch.sign(rel) * torch.log(rel.abs() + 1)
        for layer in self.net:
            rel = layer(rel)
        return rel.permute(2, 0, 1)


class Codebook(nn.Module):
    def __init__(self, size, dim):
        super().__init__()
        self.register_buffer("initted", torch.tensor([1.0]))
        self.register_buffer("cluster_size", torch.zeros(1, size))
        self.register_buffer("embed", F.normalize(torch.randn(1, size, dim), dim=-1))


class VQ(nn.Module):
    def __init__(self, size, dim):
        super().__init__()
        self._codebook = Codebook(size, dim)

    def forward(self, x):  # eval-mode cosine VQ: nearest code by cosine, raw code returned
        embed = self._codebook.embed[0]
        ind = (F.normalize(x, dim=-1) @ F.normalize(embed, dim=-1).T).argmax(dim=-1)
        return embed[ind]


class CTViT(nn.Module):
    def __init__(
        self,
        dim,
        codebook_size,
        image_size,
        patch_size,
        temporal_patch_size,
        spatial_depth,
        temporal_depth,
        dim_head,
        heads,
    ):
        super().__init__()
        self.patch = patch_size
        inner = int(4 * (2 / 3) * dim)
        patch_dim = patch_size * patch_size * temporal_patch_size
        self.spatial_rel_pos_bias = ContinuousPositionBias(dim, heads)
        self.to_patch_emb_first_frame = nn.Sequential(
            ToTubelets(1, patch_size), nn.LayerNorm(patch_size**2), nn.Linear(patch_size**2, dim), nn.LayerNorm(dim)
        )
        self.to_patch_emb = nn.Sequential(
            ToTubelets(temporal_patch_size, patch_size),
            nn.LayerNorm(patch_dim),
            nn.Linear(patch_dim, dim),
            nn.LayerNorm(dim),
        )
        self.enc_spatial_transformer = Transformer(dim, spatial_depth, dim_head, heads, inner)
        self.enc_temporal_transformer = Transformer(dim, temporal_depth, dim_head, heads, inner)
        self.vq = VQ(codebook_size, dim)
        self.to_pixels_first_frame = nn.Sequential(nn.Linear(dim, patch_size**2))
        self.to_pixels = nn.Sequential(nn.Linear(dim, patch_dim))

    def forward(self, video):
        tokens = self.to_patch_emb(video)
        b, t, h, w, d = tokens.shape
        shape = (b, t, h, w)
        x = tokens.reshape(b * t, h * w, d)
        x = self.enc_spatial_transformer(x, shape, self.spatial_rel_pos_bias(h, w))
        x = torch.einsum("bthwd->bhwtd", x.reshape(b, t, h, w, d)).reshape(b * h * w, t, d)
        x = self.enc_temporal_transformer(x, shape)
        x = torch.einsum("bhwtd->bthwd", x.reshape(b, h, w, t, d))
        return self.vq(x)


class CTCLIP(nn.Module):
    """`CTCLIP(image_encoder=CTViT, text_encoder=BertModel, extra_latent_projection=False)` at inference."""

    def __init__(self, image_encoder: CTViT, text_config: BertConfig, dim_image: int, dim_latent: int):
        super().__init__()
        self.visual_transformer = image_encoder
        self.text_transformer = BertModel(text_config)  # with its (unused) pooler, as CT-CLIP builds it
        self.to_text_latent = nn.Linear(text_config.hidden_size, dim_latent, bias=False)
        self.to_visual_latent = nn.Linear(dim_image, dim_latent, bias=False)
        self.to_text_latent_extra = nn.Linear(text_config.hidden_size, dim_latent, bias=False)
        self.to_visual_latent_extra = nn.Linear(dim_image, dim_latent, bias=False)
        self.temperature = nn.Parameter(torch.tensor(1.0))

    def latents(self, input_ids, attention_mask, image):
        text = self.text_transformer(input_ids, attention_mask=attention_mask)[0][:, 0, :]
        enc_image = self.visual_transformer(image).mean(dim=1)
        enc_image = enc_image.reshape(enc_image.shape[0], -1)
        return F.normalize(self.to_text_latent(text), dim=-1), F.normalize(self.to_visual_latent(enc_image), dim=-1)

    def forward(self, input_ids, attention_mask, image):
        """CT-CLIP's inference output: paired similarity × exp(temperature)."""
        text, image = self.latents(input_ids, attention_mask, image)
        return (text * image).sum(dim=-1) * self.temperature.exp()
