"""The FLOP count: a hand calculation from tiny-bert's shapes, and torch's own counter on real passes."""

from __future__ import annotations

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from mtpeft.ledger import flop_model
from mtpeft.methods.base import create_method
from mtpeft.models.backbone import load_backbone
from mtpeft.models.tiny import TINY_SIZES

H, FF, LAYERS = TINY_SIZES["hidden"], TINY_SIZES["intermediate"], TINY_SIZES["layers"]
R = 4


def encoder(method: str):
    backbone = load_backbone("tiny-bert")
    if method == "full":
        return backbone.model, backbone.model.config
    return create_method(method, {"r": R}).inject(backbone), backbone.model.config


def test_full_fine_tuning_by_hand() -> None:
    model = flop_model(*encoder("full"))
    per_layer = 4 * H * H + 2 * H * FF  # q, k, v, o and the two FFN matrices; the pooler runs once per sequence
    assert model.linear_weights == model.trainable_weights == model.input_grad_weights == LAYERS * per_layer
    tokens, cells = 10 * 7, 10 * 7 * 7  # a padded batch of 10 sequences of 7 positions
    forward = 2 * LAYERS * per_layer * tokens + 4 * LAYERS * H * cells
    flops = model.training(tokens, cells)
    assert flops["forward"] == forward
    assert flops["total"] == 3 * forward  # backward = 2 x forward when every weight trains
    assert flops["saved_by_frozen_weights"] == 0


def test_lora_by_hand() -> None:
    model = flop_model(*encoder("lora"))  # LoRA on query and value of both layers
    base = LAYERS * (4 * H * H + 2 * H * FF)
    lora = LAYERS * 2 * (H * R + R * H)
    assert model.linear_weights == base + lora
    assert model.trainable_weights == lora
    # in the first layer nothing below q/k/v trains: no input gradient for them nor for the lora_A matrices
    assert model.input_grad_weights == base + lora - 3 * H * H - 2 * H * R
    flops = model.training(100, 1000)
    assert flops["backward_weights"] == 2 * lora * 100
    assert flops["saved_by_frozen_weights"] == 2 * base * 100


@pytest.mark.parametrize(("method", "tolerance"), [("full", 0.002), ("lora", 0.05)])
def test_agrees_with_torch_flop_counter(method: str, tolerance: float) -> None:
    """Measured on a real forward + backward; LoRA overcounts the first layer's attention backward."""
    enc, config = encoder(method)
    model = flop_model(enc, config)
    batch, length = 4, 48
    ids = torch.randint(5, 1000, (batch, length))
    enc.train()
    with FlopCounterMode(display=False) as counter:
        enc(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state.mean().backward()
    counted = model.training(batch * length, batch * length * length)["total"]
    assert counted == pytest.approx(counter.get_total_flops(), rel=tolerance)
    assert counted >= counter.get_total_flops() * 0.998  # never an undercount beyond the pooler


def test_lm_head_counts_what_flop_counter_sees_on_target_positions():
    from mtpeft.data.collate import IGNORE_INDEX
    from mtpeft.ledger.flops import FlopModel
    from mtpeft.models.generation import next_token_loss

    head = torch.nn.Linear(16, 50, bias=False).requires_grad_(False)
    hidden = torch.randn(2, 7, 16, requires_grad=True)
    labels = torch.full((2, 7), IGNORE_INDEX)
    labels[0, 3:6] = torch.tensor([1, 2, 3])
    labels[1, 5:7] = torch.tensor([4, 5])  # 5 target tokens; each is predicted from the position before it
    with FlopCounterMode(display=False) as counter:
        next_token_loss(hidden, labels, head).backward()
    zero = dict.fromkeys(("forward", "backward_activations", "backward_weights", "total", "saved_by_frozen_weights"), 0)
    counted = FlopModel(0, 0, 0, 0, 0).with_lm_head(zero, tokens=5, head_weights=head.weight.numel(), trains=False)
    assert counted["total"] == counter.get_total_flops() == 4 * 5 * 16 * 50
    assert counted["backward_weights"] == 0 and counted["saved_by_frozen_weights"] == counted["forward"]


def test_causal_models_attend_to_the_lower_triangle_of_each_row() -> None:
    from mtpeft.ledger import attended_pairs

    lengths = [7, 3, 12, 1]
    tokens, squares = sum(lengths), sum(n * n for n in lengths)
    assert attended_pairs(tokens, squares, causal=False) == squares
    assert attended_pairs(tokens, squares, causal=True) == sum(int(torch.ones(n, n).tril().sum()) for n in lengths)
