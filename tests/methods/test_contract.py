"""The contract every method keeps, checked on tiny BERT-, Llama- and T5-style models (as peft's
ALL_CONFIGS suites do): what trains, identity at init, save -> load round trip, error listing."""

from __future__ import annotations

import json

import pytest
import torch

from mtpeft.errors import ConfigError
from mtpeft.methods import METHODS, create_method
from mtpeft.models.backbone import load_backbone

MODELS = ["tiny-bert", "tiny-roberta", "tiny-llama", "tiny-qwen2", "tiny-t5"]
CASES = [
    ("lora", {"r": 4, "alpha": 8}),
    ("ia3", {}),
    ("prefix", {"num_virtual_tokens": 4}),
    ("prompt", {"num_virtual_tokens": 4}),
    ("adapter", {"dim": 8}),
    ("parallel_adapter", {"dim": 8}),
    ("full", {}),
]
IDENTITY_AT_INIT = {"lora", "ia3", "adapter", "parallel_adapter", "full"}


def supported(method: str, model: str) -> bool:
    return not (method == "prefix" and model == "tiny-t5")


def inputs(backbone):
    enc = backbone.tokenizer(["def f(x): return x + 1", "int main() { return 0; }"], padding=True,
                             return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"]


def hidden(encoder, ids, mask, skip: int = 0):
    encoder.eval()
    with torch.no_grad():
        return encoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, skip:]


def test_every_registered_method_is_covered():
    assert {name for name, _ in CASES} == set(METHODS.names())


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("name", "args"), CASES)
def test_only_method_parameters_train_and_init_is_identity(name, args, model):
    if not supported(name, model):
        pytest.skip("prefix tuning is not supported on T5 encoders")
    backbone = load_backbone(model)
    ids, mask = inputs(backbone)
    before = hidden(backbone.model, ids, mask)
    base_names = {n for n, _ in backbone.model.named_parameters()}
    own = {id(p) for p in backbone.model.parameters()}
    method = create_method(name, args)
    encoder = method.inject(backbone)
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable
    added = {n for n, p in encoder.named_parameters() if id(p) not in own}
    assert added == {n for n, _ in encoder.named_parameters() if method.adds(n)}  # the markers name what it added
    if name == "full":
        assert len(trainable) == len(base_names) and not added
    else:
        assert trainable == added, sorted(trainable ^ added)[:5]
    if name in IDENTITY_AT_INIT:
        after = hidden(encoder, ids, mask)
        torch.testing.assert_close(after, before)
    out = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    out.float().pow(2).mean().backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in encoder.parameters() if p.requires_grad)


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize(("name", "args"), [c for c in CASES if c[0] != "full"])
def test_save_load_round_trip(name, args, model, tmp_path):
    if not supported(name, model):
        pytest.skip("prefix tuning is not supported on T5 encoders")
    backbone = load_backbone(model)
    method = create_method(name, args)
    encoder = method.inject(backbone)
    with torch.no_grad():  # move away from init so the round trip is not trivially equal
        for p in encoder.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    ids, mask = inputs(backbone)
    skip = method.virtual_tokens
    expected = hidden(encoder, ids, mask, skip)
    method.save(encoder, backbone, tmp_path / "adapter")
    files = sorted(p.name for p in (tmp_path / "adapter").iterdir())
    assert "adapter_config.json" in files and "adapter_model.safetensors" in files
    from safetensors.torch import load_file

    saved = load_file(tmp_path / "adapter" / "adapter_model.safetensors")
    base_count = sum(p.numel() for p in load_backbone(model).model.parameters())
    assert sum(v.numel() for v in saved.values()) < base_count / 2  # no base weights stored
    fresh = create_method(name, args)
    reloaded = fresh.load(load_backbone(model), tmp_path / "adapter")
    torch.testing.assert_close(hidden(reloaded, ids, mask, skip), expected)


def test_peft_adapters_open_in_plain_peft(tmp_path):
    from peft import PeftModel

    backbone = load_backbone("tiny-bert")
    method = create_method("lora", {"r": 4})
    encoder = method.inject(backbone)
    with torch.no_grad():  # trained-looking weights: lora_B starts at zero, where any file would "work"
        for p in encoder.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 0.05)
    ids, mask = inputs(backbone)
    method.save(encoder, backbone, tmp_path / "adapter")
    config = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["base_model_name_or_path"] == backbone.source
    plain = PeftModel.from_pretrained(load_backbone("tiny-bert").model, tmp_path / "adapter")
    base = hidden(load_backbone("tiny-bert").model, ids, mask)
    assert not torch.allclose(hidden(encoder, ids, mask), base, atol=1e-3)  # the adapter changes the outputs ...
    torch.testing.assert_close(hidden(plain, ids, mask), hidden(encoder, ids, mask))  # ... and plain peft agrees


def test_unknown_targets_list_candidates():
    backbone = load_backbone("tiny-llama")
    with pytest.raises(ConfigError) as err:
        create_method("lora", {"target_modules": ["query"]}).inject(backbone)
    message = str(err.value)
    assert "'query'" in message and "q_proj" in message and "down_proj" in message
    with pytest.raises(ConfigError, match="target_modules"):
        create_method("adapter", {"target_modules": ["nope"]}).inject(load_backbone("tiny-bert"))


def test_all_linear_adapts_every_linear_layer_but_none_outside_the_backbone():
    """peft's all-linear shorthand is passed through (not refused as a pattern that matches nothing), and the run
    records the layers it resolved to."""
    backbone = load_backbone("tiny-bert")
    linear = [n for n, m in backbone.model.named_modules() if isinstance(m, torch.nn.Linear)]
    method = create_method("lora", {"target_modules": "all-linear"})
    method.inject(backbone)
    assert {"query", "key", "value", "dense"} <= {name.rsplit(".", 1)[-1] for name in method.targets}
    assert set(method.targets) <= set(linear) and len(method.targets) > 2 * len(backbone.model.encoder.layer)


def test_bad_method_args_name_the_field():
    with pytest.raises(ConfigError, match=r"method_args.rank: Extra inputs.*takes: r, alpha"):
        create_method("lora", {"rank": 8})
    with pytest.raises(ConfigError, match=r"method_args.r: Input should be greater than 0"):
        create_method("lora", {"r": 0})


def test_serial_adapter_placement_per_family():
    expected = {  # the full module names of 2 layers x (attention output, FFN output)
        "tiny-bert": {f"encoder.layer.{i}.{m}" for i in (0, 1) for m in ("attention.output.dense", "output.dense")},
        "tiny-llama": {f"layers.{i}.{m}" for i in (0, 1) for m in ("self_attn.o_proj", "mlp.down_proj")},
        "tiny-t5": {f"encoder.block.{i}.{m}" for i in (0, 1) for m in ("layer.0.SelfAttention.o",
                                                                       "layer.1.DenseReluDense.wo")},
    }
    for model, names in expected.items():
        method = create_method("adapter", {"dim": 4})
        method.inject(load_backbone(model))
        assert set(method.targets) == names, method.targets
