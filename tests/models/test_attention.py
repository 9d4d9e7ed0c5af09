"""Attention with a vectorised dropout mask: the dropout's statistics, and the same attention as SDPA."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers.integrations.sdpa_attention import sdpa_attention_forward

from mtpeft.models.attention import NAME, attention, rounded_drop_probability, vectorised_dropout
from mtpeft.models.backbone import load_backbone

NO_DROP = 1e-9
"""A dropout that rounds to zero: the math path runs and drops nothing."""


def test_drop_probability_is_rounded_to_sixteen_bits() -> None:
    assert rounded_drop_probability(0.1) == 6554 / 65536
    assert rounded_drop_probability(NO_DROP) == 0.0


def test_drops_the_rounded_share_and_rescales_the_rest() -> None:
    torch.manual_seed(0)
    x = torch.ones(1_000_003)  # not a multiple of four numbers per random word
    out = vectorised_dropout(x, 0.1)
    p = rounded_drop_probability(0.1)
    dropped = (out == 0).double().mean().item()
    assert abs(dropped - p) < 5 * (p * (1 - p) / x.numel()) ** 0.5
    assert torch.all(out[out != 0] == 1 / (1 - p))


def test_the_mask_follows_the_default_generator() -> None:
    x = torch.ones(4096)
    torch.manual_seed(3)
    first = vectorised_dropout(x, 0.3)
    torch.manual_seed(3)
    assert torch.equal(vectorised_dropout(x, 0.3), first)
    assert not torch.equal(vectorised_dropout(x, 0.3), first)
    assert vectorised_dropout(x, NO_DROP) is x


def qkv(heads: int, kv_heads: int) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(0)
    return (torch.randn(2, heads, 7, 8, generator=generator), torch.randn(2, kv_heads, 7, 8, generator=generator),
            torch.randn(2, kv_heads, 7, 8, generator=generator))


def test_matches_sdpa_with_a_padding_mask() -> None:
    module = SimpleNamespace(is_causal=False)
    query, key, value = qkv(4, 4)
    mask = torch.ones(2, 1, 7, 7, dtype=torch.bool)
    mask[1, ..., 5:] = False  # the second row's last two positions are padding
    ours, _ = attention(module, query, key, value, mask, dropout=NO_DROP, scaling=0.3)
    reference, _ = sdpa_attention_forward(module, query, key, value, mask, dropout=0.0, scaling=0.3)
    torch.testing.assert_close(ours, reference)


def test_matches_sdpa_causal_with_grouped_key_value_heads() -> None:
    module = SimpleNamespace(is_causal=True, num_key_value_groups=2)
    query, key, value = qkv(4, 2)
    ours, _ = attention(module, query, key, value, None, dropout=NO_DROP)
    reference, _ = sdpa_attention_forward(module, query, key, value, None, dropout=0.0)
    torch.testing.assert_close(ours, reference)


@pytest.mark.parametrize(("reference", "attention_dropout", "expected"),
                         [("tiny-bert", None, NAME), ("tiny-bert", 0.0, "sdpa"), ("tiny-llama", None, "sdpa")])
def test_backbones_with_attention_dropout_use_it(reference: str, attention_dropout: float | None,
                                                 expected: str) -> None:
    backbone = load_backbone(reference, attention_dropout=attention_dropout)
    assert backbone.model.config._attn_implementation == expected


def test_bert_trains_through_it_and_evaluates_as_before() -> None:
    ours = load_backbone("tiny-bert").model
    plain = load_backbone("tiny-bert").model
    plain.set_attn_implementation("sdpa")
    ids = torch.randint(5, 1000, (3, 9))
    mask = torch.ones_like(ids)
    mask[2, 6:] = 0
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(input_ids=ids, attention_mask=mask).last_hidden_state,
                                   plain.eval()(input_ids=ids, attention_mask=mask).last_hidden_state)
    ours.train()
    first = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    second = ours(input_ids=ids, attention_mask=mask).last_hidden_state
    assert not torch.allclose(first, second)  # dropout is on
    first.sum().backward()
    assert ours.encoder.layer[0].attention.self.query.weight.grad.abs().sum() > 0


def test_computes_in_full_precision_under_bf16_autocast_as_the_math_path_does() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    module = SimpleNamespace(is_causal=False)
    query, key, value = (t.to(torch.bfloat16) for t in qkv(4, 4))
    with torch.autocast("cpu", dtype=torch.bfloat16), sdpa_kernel([SDPBackend.MATH]):
        ours, _ = attention(module, query, key, value, None, dropout=NO_DROP)
        reference, _ = sdpa_attention_forward(module, query, key, value, None, dropout=0.0)
    assert ours.dtype == reference.dtype == torch.bfloat16
    torch.testing.assert_close(ours, reference, rtol=0, atol=0)


def test_hidden_dropouts_are_drawn_vectorised_in_training_only() -> None:
    from torch import nn

    from mtpeft.models.attention import VectorisedDropout

    model = load_backbone("tiny-bert").model
    swapped = [m for m in model.modules() if isinstance(m, VectorisedDropout)]
    assert swapped and not [m for m in model.modules() if type(m) is nn.Dropout and m.p > 0]
    assert not any(m.training for m in swapped)  # from_pretrained's eval mode is kept: no dropout until train()
    dropout = swapped[0]
    x = torch.ones(400, 500)
    dropout.train()
    out = dropout(x)
    kept = out != 0
    p = rounded_drop_probability(dropout.p)
    assert abs(1 - kept.float().mean().item() - p) < 0.005  # 200,000 draws: the rate within ~4 sigma
    torch.testing.assert_close(out[kept], torch.full_like(out[kept], 1 / (1 - p)))
    dropout.eval()
    assert torch.equal(dropout(x), x)
