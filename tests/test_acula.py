"""AcuLaModel: the teacher frozen and its cached embeddings equal to running it, each loss term what its definition
says (CKA, the family's InfoNCE, the MAE's masked loss; off for a tower without a decoder), the text width read
from the teacher, save → AutoModel and → trust_remote_code without the package."""

import pytest
import torch
import torch.nn.functional as F
from no_package import run_without_package
from safetensors.torch import save_file
from transformers import AutoModel, BertConfig, HubertConfig

from modeling_speechct import AcuLaConfig, AcuLaModel, SpectrogramMAEConfig
from modeling_speechct.losses import cka_loss, contrastive_loss

MAE = {"num_mel_bins": 16, "max_frames": 64, "patch_size": (4, 8), "hidden_size": 32, "num_hidden_layers": 2,
       "num_attention_heads": 2, "intermediate_size": 64, "decoder_hidden_size": 16, "decoder_num_layers": 1,
       "decoder_num_heads": 2}  # fmt: skip
TEXT = {"vocab_size": 50, "hidden_size": 24, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 48}


def _config(**kw):
    return AcuLaConfig(audio_config=SpectrogramMAEConfig(**MAE), text_config=BertConfig(**TEXT),
                       projection_hidden_size=40, projection_dim=20, **kw)  # fmt: skip


def _batch(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 50, (n, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    return torch.randn(n, 16, 64, generator=g), ids, mask


def test_cached_teacher_embeddings_are_the_teachers_pooled_layer():
    model = AcuLaModel(_config(text_layer=1)).eval()
    x, ids, mask = _batch()
    cached = model.encode_reports(ids, mask)
    hidden = model.text_model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[1]
    by_hand = torch.stack([hidden[i, mask[i].bool()].mean(dim=0) for i in range(len(ids))])
    torch.testing.assert_close(cached, by_hand)
    a = model(x, input_ids=ids, attention_mask=mask)
    b = model(x, teacher_embeds=cached)
    torch.testing.assert_close(a.text_embeds, b.text_embeds)
    assert all(not p.requires_grad for p in model.text_model.parameters())
    with pytest.raises(ValueError, match=r"teacher_embeds: expected \(batch, 24\)"):
        model(x, teacher_embeds=torch.zeros(6, 23))


@pytest.mark.parametrize("align", ["cka", "infonce"])
def test_the_loss_is_its_terms(align):
    torch.manual_seed(0)
    model = AcuLaModel(_config(align_loss=align, ssl_weight=0.5)).eval()
    x, ids, mask = _batch()
    torch.manual_seed(1)
    out = model(x, input_ids=ids, attention_mask=mask)
    if align == "cka":
        expected = cka_loss(out.audio_embeds, out.text_embeds)
    else:
        expected = contrastive_loss(F.normalize(out.audio_embeds, dim=-1), F.normalize(out.text_embeds, dim=-1),
                                    model.logit_scale.exp())  # fmt: skip
    torch.testing.assert_close(out.align_loss, expected)
    torch.manual_seed(1)
    torch.testing.assert_close(out.ssl_loss, model.audio_model.reconstruction_loss(x).loss)
    torch.testing.assert_close(out.loss, out.align_loss + 0.5 * out.ssl_loss)


def test_a_short_fit_lowers_both_terms_and_leaves_the_teacher():
    torch.manual_seed(0)
    model = AcuLaModel(_config(projection_dropout=0.0))
    teacher = {k: v.clone() for k, v in model.text_model.state_dict().items()}
    x, ids, mask = _batch(16)
    cached = model.encode_reports(ids, mask)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    torch.manual_seed(5)
    first = model(x, teacher_embeds=cached)
    for _ in range(40):
        optimiser.zero_grad()
        model(x, teacher_embeds=cached).loss.backward()
        optimiser.step()
    torch.manual_seed(5)
    last = model(x, teacher_embeds=cached)
    assert last.align_loss < first.align_loss - 0.1 and last.ssl_loss < first.ssl_loss
    assert all(torch.equal(v, model.text_model.state_dict()[k]) for k, v in teacher.items())


def test_a_tower_without_a_decoder_has_no_ssl_term():
    audio = HubertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                         conv_dim=(16, 16), conv_kernel=(10, 3), conv_stride=(5, 2), num_conv_pos_embeddings=16,
                         num_conv_pos_embedding_groups=2)  # fmt: skip
    model = AcuLaModel(AcuLaConfig(audio_config=audio, text_config=BertConfig(**TEXT))).eval()
    assert not model.config.has_ssl_term
    out = model(torch.randn(4, 1600), teacher_embeds=torch.randn(4, 24))
    assert out.ssl_loss is None and torch.equal(out.loss, out.align_loss)
    assert model.text_projection[0].in_features == 24  # read from the teacher's config
    with pytest.raises(ValueError, match="align_loss='mse' is not one of"):
        AcuLaConfig(align_loss="mse")


def test_save_reloads_through_automodel_and_remote_code(tmp_path):
    model = AcuLaModel(_config()).eval()
    x, ids, mask = _batch(3)
    model.save_pretrained(tmp_path / "ckpt")
    with torch.no_grad():
        expected = model(x, input_ids=ids, attention_mask=mask, return_loss=False)
    again = AutoModel.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x, input_ids=ids, attention_mask=mask, return_loss=False).audio_embeds,
                                   expected.audio_embeds)  # fmt: skip
    save_file({"x": x, "ids": ids, "mask": mask, "audio": expected.audio_embeds, "text": expected.text_embeds},
              tmp_path / "io.safetensors")  # fmt: skip
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
            out = model(io["x"], input_ids=io["ids"], attention_mask=io["mask"], return_loss=False)
        torch.testing.assert_close(out.audio_embeds, io["audio"], rtol=0, atol=1e-6)
        torch.testing.assert_close(out.text_embeds, io["text"], rtol=0, atol=1e-6)
        print("REMOTE-CODE-OK", type(model).__name__)
        """,
        tmp_path,
    )
    assert "REMOTE-CODE-OK AcuLaModel" in stdout
