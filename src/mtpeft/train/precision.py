"""Frozen weights stored in the precision autocast computes them in.

Under bf16 autocast every linear layer casts its fp32 weight to bf16 on EVERY call, forward and
backward. A PEFT run leaves almost all weights frozen, so that cast is pure overhead (on a CPU with
small matrices, a large share of the step) and the fp32 copies double the memory. Casting the frozen
linear weights once gives bit-identical outputs under autocast: it is the cast autocast would make.
"""

from __future__ import annotations

import torch
from torch import nn


def cast_frozen_linears(module: nn.Module, dtype: torch.dtype = torch.bfloat16) -> int:
    """Store the frozen weights of ``module``'s linear layers in ``dtype``; return how many were cast.

    Biases stay in fp32 (autocast adds them in the matmul's precision either way), and so does a weight
    shared with an embedding (a tied LM head): the embedding's output is not autocast, and a bf16
    embedding would carry the residual stream in bf16.
    """
    embeddings = {id(m.weight) for m in module.modules() if isinstance(m, nn.Embedding)}
    cast = 0
    for layer in module.modules():
        weight = getattr(layer, "weight", None)
        if (isinstance(layer, nn.Linear) and weight is not None and not weight.requires_grad
                and id(weight) not in embeddings and weight.dtype != dtype):
            weight.data = weight.data.to(dtype)
            cast += 1
    return cast
