"""Frozen linear weights stored in bf16 give exactly what bf16 autocast computes from fp32 weights."""

from __future__ import annotations

import copy

import torch
from torch import nn

from mtpeft.methods import create_method
from mtpeft.models.backbone import load_backbone
from mtpeft.train.precision import cast_frozen_linears


def test_cast_changes_no_output_or_gradient_under_autocast():
    backbone = load_backbone("tiny-bert")
    encoder = create_method("lora", {"r": 4, "alpha": 8}).inject(backbone)
    with torch.no_grad():
        for name, p in encoder.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    cast = copy.deepcopy(encoder)
    assert cast_frozen_linears(cast) > 0
    ids = torch.randint(5, 1000, (3, 12))
    outputs, grads = [], []
    for model in (encoder, cast):
        model.zero_grad()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids)).last_hidden_state
        out.float().square().mean().backward()
        outputs.append(out.detach())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad})
    assert torch.equal(outputs[0], outputs[1])
    assert grads[0].keys() == grads[1].keys() and all(torch.equal(grads[0][n], grads[1][n]) for n in grads[0])
    trainable = [p for p in cast.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)  # what the optimiser updates stays fp32


def test_a_weight_tied_to_an_embedding_stays_fp32():
    embedding = nn.Embedding(10, 4)
    head = nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight
    other = nn.Linear(4, 4)
    model = nn.ModuleList([embedding, head, other]).requires_grad_(False)
    assert cast_frozen_linears(model) == 1
    assert embedding.weight.dtype == torch.float32 and other.weight.dtype == torch.bfloat16
    assert other.bias.dtype == torch.float32
