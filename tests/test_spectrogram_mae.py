"""The spectrogram masked autoencoder: masking by time columns and frequency rows, a loss over masked patches only
(checked against a float64 re-computation), a loss that falls in a short fit, clear errors, Auto round trip."""

import numpy as np
import pytest
import torch
from no_package import run_without_package
from safetensors.torch import save_file
from transformers import AutoModel

from modeling_speechct import SpectrogramMAEConfig, SpectrogramMAEModel
from modeling_speechct.modeling_spectrogram_mae import grid_mask, patchify

TINY = {"num_mel_bins": 16, "max_frames": 64, "patch_size": (4, 8), "hidden_size": 32, "num_hidden_layers": 2,
        "num_attention_heads": 2, "intermediate_size": 64, "decoder_hidden_size": 16, "decoder_num_layers": 1,
        "decoder_num_heads": 2}  # fmt: skip


def _spectrograms(batch=6, frames=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 1, frames)
    tone = torch.sin(2 * np.pi * 4 * t)[None, None, :] * torch.linspace(1, 0, 16)[None, :, None]
    return tone + 0.1 * torch.randn(batch, 16, frames, generator=g)


def test_the_grid_mask_hides_whole_columns_and_rows():
    mask = grid_mask(3, (4, 10), 0.7, 0.25, torch.Generator().manual_seed(1)).reshape(3, 4, 10)
    for m in mask:
        full_cols = m.all(dim=0).sum().item()
        full_rows = m.all(dim=1).sum().item()
        assert full_cols == 7 and full_rows == 1 and m.sum().item() == 7 * 4 + 1 * 10 - 7 * 1


def test_the_loss_counts_masked_patches_only():
    model = SpectrogramMAEModel(SpectrogramMAEConfig(**TINY)).eval()
    x = _spectrograms()
    out = model.reconstruction_loss(x, generator=torch.Generator().manual_seed(2))
    patches = patchify(x, (4, 8)).double().numpy()
    err = ((out.reconstruction.detach().double().numpy() - patches) ** 2).mean(axis=-1)
    mask = out.mask.numpy()
    np.testing.assert_allclose(out.loss.item(), err[mask].mean(), rtol=1e-5)
    assert abs(err[mask].mean() - err.mean()) > 1e-6  # the visible patches would change it
    # what the encoder saw: changing a hidden patch's values leaves the visible-only encoding unchanged
    hidden_patch = int(np.argmax(mask[0]))
    row, col = divmod(hidden_patch, 64 // 8)
    moved = x.clone()
    moved[0, row * 4 : (row + 1) * 4, col * 8 : (col + 1) * 8] += 5.0
    again = model.reconstruction_loss(moved, mask=out.mask)
    torch.testing.assert_close(again.last_hidden_state, out.last_hidden_state)


def test_a_short_fit_lowers_the_reconstruction_loss():
    torch.manual_seed(0)
    model = SpectrogramMAEModel(SpectrogramMAEConfig(**TINY))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = _spectrograms(batch=16)
    held = torch.Generator().manual_seed(9)
    fixed = grid_mask(16, (4, 8), 0.7, 0.3, held)
    first = model.reconstruction_loss(x, mask=fixed).loss.item()
    for step in range(60):
        optimiser.zero_grad()
        model.reconstruction_loss(x, generator=torch.Generator().manual_seed(step)).loss.backward()
        optimiser.step()
    assert model.reconstruction_loss(x, mask=fixed).loss.item() < 0.5 * first


def test_bad_input_is_refused_and_the_model_reloads(tmp_path):
    model = SpectrogramMAEModel(SpectrogramMAEConfig(**TINY)).eval()
    with pytest.raises(ValueError, match=r"expected \(batch, 16, frames\) with frames a multiple of 8 and ≤ 64"):
        model(torch.zeros(1, 16, 72))
    bad = _spectrograms(1)
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="input_features"):
        model(bad)
    with pytest.raises(ValueError, match="mask_ratio_time"):
        SpectrogramMAEConfig(**{**TINY, "mask_ratio_time": 1.0})
    model.save_pretrained(tmp_path)
    again = AutoModel.from_pretrained(tmp_path).eval()
    x = _spectrograms(2, frames=32)  # shorter than max_frames: the first position columns
    torch.testing.assert_close(again(x).pooler_output, model(x).pooler_output)
    assert again(x).pooler_output.shape == (2, 32)


def test_trust_remote_code_loads_it_where_the_package_cannot_be_imported(tmp_path):
    model = SpectrogramMAEModel(SpectrogramMAEConfig(**TINY)).eval()
    x = _spectrograms(2)
    model.save_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        save_file({"x": x, "expected": model(x).pooler_output}, tmp_path / "io.safetensors")
    stdout = run_without_package(
        f"""
        import torch
        from safetensors.torch import load_file
        from transformers import AutoModel
        torch.set_num_threads(1)
        io = load_file({str(tmp_path / "io.safetensors")!r})
        model = AutoModel.from_pretrained({str(tmp_path / "ckpt")!r}, trust_remote_code=True).eval()
        assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
        with torch.no_grad():
            torch.testing.assert_close(model(io["x"]).pooler_output, io["expected"], rtol=0, atol=0)
        print("REMOTE-CODE-OK", type(model).__name__)
        """,
        tmp_path,
    )
    assert "REMOTE-CODE-OK SpectrogramMAEModel" in stdout
