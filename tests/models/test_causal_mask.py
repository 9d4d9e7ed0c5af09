"""A causal encoder's right-padded batch runs without its mask and gives the same results as with it."""

from __future__ import annotations

import pytest
import torch

from mtpeft.methods import create_method
from mtpeft.models.backbone import load_backbone
from mtpeft.models.multitask import MultiTaskModel
from mtpeft.tasks.spec import TaskKind

METHOD_ARGS = {"lora": {"r": 4}, "adapter": {}, "prefix": {"num_virtual_tokens": 3},
               "prompt": {"num_virtual_tokens": 3}, "full": {}}


def models(method: str, pooling: str) -> tuple[MultiTaskModel, MultiTaskModel]:
    """The same weights twice: told the encoder is causal, and not told (so always masked)."""
    backbone = load_backbone("tiny-llama")
    spec = create_method(method, METHOD_ARGS[method])
    torch.manual_seed(0)
    encoder = spec.inject(backbone)
    built = [MultiTaskModel(encoder, {"t": TaskKind.BINARY}, backbone.hidden_size, pooling, 0.0, spec.virtual_tokens,
                            causal=causal) for causal in (True, False)]
    built[1].heads.load_state_dict(built[0].heads.state_dict())
    return built[0].eval(), built[1].eval()


def right_padded_batch() -> tuple[torch.Tensor, torch.Tensor]:
    lengths = [9, 4, 6]
    ids = torch.zeros((3, 9), dtype=torch.long)
    mask = torch.zeros((3, 9), dtype=torch.long)
    generator = torch.Generator().manual_seed(1)
    for row, n in enumerate(lengths):
        ids[row, :n] = torch.randint(10, 1000, (n,), generator=generator)
        mask[row, :n] = 1
    return ids, mask


@pytest.mark.parametrize("method", sorted(METHOD_ARGS))
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_unmasked_causal_batch_pools_the_same_vectors(method: str, pooling: str) -> None:
    causal, masked = models(method, pooling)
    ids, mask = right_padded_batch()
    assert causal.attention_mask_for(mask) is None and masked.attention_mask_for(mask) is mask
    with torch.no_grad():
        torch.testing.assert_close(causal.encode(ids, mask), masked.encode(ids, mask), rtol=1e-5, atol=1e-5)


def test_left_padding_keeps_the_mask() -> None:
    causal, _ = models("lora", "mean")
    _, mask = right_padded_batch()
    left = mask.flip(1)
    assert causal.attention_mask_for(left) is left


def test_gradients_match_with_and_without_the_mask() -> None:
    causal, masked = models("lora", "mean")
    ids, mask = right_padded_batch()
    grads = []
    for model in (causal, masked):
        model.zero_grad()
        model.encode(ids, mask).square().sum().backward()
        grads.append([p.grad.clone() for p in model.encoder.parameters() if p.requires_grad])
    for unmasked_grad, masked_grad in zip(*grads, strict=True):
        torch.testing.assert_close(unmasked_grad, masked_grad, rtol=1e-5, atol=1e-6)
