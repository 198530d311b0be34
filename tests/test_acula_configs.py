"""`train/configs/acula_medgemma.yaml` (the paper's teacher, for online users): it parses into `AcuLaArguments`
with the paper's recipe, and a tiny random Gemma 3 image-text model of MedGemma's architecture in its place builds
an AcuLa model that teaches through the language model alone, its width read from the config, and trains a step."""

import dataclasses

import torch
import yaml
from transformers import AutoModel, AutoTokenizer, Gemma3Config, Gemma3TextModel

from modeling_speechct.training.acula_training import AcuLaArguments, build_acula
from modeling_speechct.training.arguments import parse_arguments
from modeling_speechct.training.teacher import text_tower_path
from scripts import ROOT

CONFIG = ROOT / "train" / "configs" / "acula_medgemma.yaml"


def _tiny_gemma3(folder):
    config = Gemma3Config(
        text_config={"hidden_size": 48, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
                     "num_key_value_heads": 1, "head_dim": 24, "vocab_size": 30522, "sliding_window": 16},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": 28, "patch_size": 14},
        mm_tokens_per_image=4,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModel.from_config(config)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(text_tower_path("minilm")).save_pretrained(folder)  # a tokenizer of that vocab
    return model


def test_the_config_holds_the_papers_recipe():
    args = parse_arguments(AcuLaArguments, [str(CONFIG)])
    raw = yaml.safe_load(CONFIG.read_text())
    assert set(raw) <= {f.name for f in dataclasses.fields(AcuLaArguments)}
    assert args.text_tower == "google/medgemma-4b-pt" and args.text_layer == -1 and args.align_loss == "cka"
    assert (args.learning_rate, args.weight_decay, args.warmup_steps, args.num_epochs) == (1e-5, 1e-2, 400, 50)
    assert (args.per_device_batch_size, args.gradient_accumulation_steps) == (24, 2)
    assert args.align_weight == args.ssl_weight == 1.0


def test_a_gemma3_image_text_teacher_teaches_through_its_language_model(tmp_path):
    gemma = _tiny_gemma3(tmp_path / "gemma3")
    args = parse_arguments(AcuLaArguments, [str(CONFIG)])
    args = dataclasses.replace(args, text_tower=str(tmp_path / "gemma3"), audio_tower="new")
    model, processor = build_acula(args)
    assert type(model.text_model) is Gemma3TextModel  # the vision tower is not carried
    assert model.config.text_config.hidden_size == 48 and model.text_projection[0].in_features == 48
    language = gemma.language_model.state_dict()
    assert all(torch.equal(v, language[k]) for k, v in model.text_model.state_dict().items())
    reports = ["Recorded lung sounds. Smoker: yes.", "Recorded heart sounds.", "Recorded cough sounds.",
               "Recorded lung sounds. Captured with a smartphone."]  # fmt: skip
    text = processor(text=reports)
    teacher = model.encode_reports(text["input_ids"], text["attention_mask"])
    assert teacher.shape == (4, 48) and torch.isfinite(teacher).all()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    out = model(torch.randn(4, 64, 800, generator=torch.Generator().manual_seed(0)), teacher_embeds=teacher)
    out.loss.backward()
    optimiser.step()
    assert torch.isfinite(out.align_loss) and torch.isfinite(out.ssl_loss)
    after = model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in before.items() if k.startswith("text_model."))  # frozen
    assert not torch.equal(before["text_projection.0.weight"], after["text_projection.0.weight"])
    assert not torch.equal(before["audio_model.patch_embeddings.weight"], after["audio_model.patch_embeddings.weight"])
