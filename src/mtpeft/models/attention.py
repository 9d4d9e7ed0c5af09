"""Scaled dot-product attention whose dropout mask is drawn vectorised, for training on CPUs.

With dropout on attention probabilities (BERT-family models: 0.1), PyTorch's fused CPU kernels do not
run in training and its math path draws the ``batch x heads x L x L`` mask with ``bernoulli_``, which
outside Intel's MKL path (on AMD CPUs, for one) is a serial loop, one random number per element: 35% of
a MiniLM LoRA step here. This draws 64-bit random words and reads each as four 16-bit numbers, then
compares them with a threshold, all vectorised: one layer's mask (batch 16 x 256 tokens, 12 heads)
takes 28 ms instead of 92 ms.

The drop probability is rounded to a multiple of 1/65536 (0.1 becomes 0.100006) and the kept
probabilities are scaled by the inverse of the rounded keep rate, so the expectation is unchanged.
Without dropout (evaluation, or ``attention_dropout: 0``) and on GPUs, whose SDPA kernels apply dropout
inside the fused kernel, transformers' own SDPA path runs. Registered with transformers' attention
interface as ``mtpeft_sdpa``.

The model's other dropouts (``nn.Dropout`` on hidden states: 13 per MiniLM forward) draw their masks with the
same ``bernoulli_``: 9% of an fp32 MiniLM step. :func:`use_vectorised_hidden_dropout` swaps them for
:class:`VectorisedDropout`, which draws the same way as the attention's on CPUs.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

NAME = "mtpeft_sdpa"
LEVELS = 1 << 16  # a 16-bit number per element
ATTENTION_DROPOUT_KEYS = ("attention_probs_dropout_prob", "attention_dropout", "attn_pdrop")
"""Config fields that hold the dropout on attention probabilities (BERT family, Llama/Qwen family, GPT-2)."""


def use_vectorised_dropout(model: Any) -> bool:
    """Switch ``model`` to this attention if it drops attention probabilities and reads transformers'
    attention interface; return whether it did (T5, for one, computes attention its own way)."""
    dropout = max(float(getattr(model.config, key, 0.0) or 0.0) for key in ATTENTION_DROPOUT_KEYS)
    if dropout == 0.0 or not getattr(model, "_supports_attention_backend", False):
        return False
    model.set_attn_implementation(NAME)
    return True


def use_vectorised_hidden_dropout(model: nn.Module) -> int:
    """Replace every ``nn.Dropout`` of ``model`` that drops something by :class:`VectorisedDropout`; return
    how many were replaced."""
    swapped = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout and child.p > 0:
                replacement = VectorisedDropout(child.p)
                replacement.train(child.training)  # a new module starts in training mode; the model may not be
                setattr(parent, name, replacement)
                swapped += 1
    return swapped


class VectorisedDropout(nn.Dropout):
    """``nn.Dropout`` whose training mask on CPUs is drawn by :func:`vectorised_dropout` (elsewhere, and in
    evaluation, it is ``nn.Dropout``)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.device.type == "cpu" and not self.inplace:
            return vectorised_dropout(x, self.p)
        return super().forward(x)


def rounded_drop_probability(p: float) -> float:
    """The drop probability :func:`dropout` applies for ``p``: the nearest multiple of 1/65536."""
    return round(p * LEVELS) / LEVELS


def vectorised_dropout(x: torch.Tensor, p: float) -> torch.Tensor:
    """Inverted dropout with probability ``rounded_drop_probability(p)``, from PyTorch's default generator."""
    drops = round(p * LEVELS)
    if drops == 0:
        return x
    words = torch.randint(-(1 << 63), (1 << 63) - 1, ((x.numel() + 3) // 4,), dtype=torch.int64, device=x.device)
    numbers = words.view(torch.int16)[: x.numel()].view(x.shape)  # uniform on [-32768, 32767]
    keep = numbers >= drops - LEVELS // 2
    return torch.where(keep, x * (LEVELS / (LEVELS - drops)), 0)


def attention(module: nn.Module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
              attention_mask: torch.Tensor | None, dropout: float = 0.0, scaling: float | None = None,
              is_causal: bool | None = None, **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' SDPA attention, except that dropout on the probabilities goes through
    :func:`vectorised_dropout`."""
    special = kwargs.get("position_bias") is not None or kwargs.get("softcap") is not None
    if dropout == 0.0 or query.device.type != "cpu" or special:  # GPU SDPA kernels fuse dropout themselves
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    dtype = query.dtype
    groups = getattr(module, "num_key_value_groups", 1)
    # in fp32 and outside autocast, as PyTorch's math path computes bf16/fp16 attention
    with torch.autocast(query.device.type, enabled=False):
        query, key, value = query.float(), repeat_kv(key, groups).float(), repeat_kv(value, groups).float()
        scores = torch.matmul(query, key.transpose(-1, -2)) * (query.shape[-1] ** -0.5 if scaling is None else scaling)
        causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
        if attention_mask is None and causal and query.shape[2] > 1:
            attention_mask = torch.ones(query.shape[2], key.shape[2], dtype=torch.bool, device=query.device).tril()
        if attention_mask is not None:
            if attention_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attention_mask, torch.finfo(scores.dtype).min)
            else:
                scores = scores + attention_mask
        probs = vectorised_dropout(torch.softmax(scores, dim=-1), dropout)
        output = torch.matmul(probs, value)
    return output.to(dtype).transpose(1, 2).contiguous(), None


AttentionInterface.register(NAME, attention)
ALL_MASK_ATTENTION_FUNCTIONS.register(NAME, sdpa_mask)
