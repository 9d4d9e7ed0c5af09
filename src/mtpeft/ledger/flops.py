"""Training FLOPs counted analytically from the model's shapes.

A short probe forward (8 tokens) records every ``nn.Linear`` the encoder runs on each token, whether
its weight trains and whether its input needs a gradient. From that, a batch of ``tokens`` positions
with ``cells`` query-key pairs costs, with ``w`` the weight count of one linear layer:

- forward: ``2*w`` per token and linear layer, plus ``4*width`` per cell and attention layer (QK^T and AV);
- backward, activation gradients: ``2*w`` per token for each linear layer whose input needs a gradient,
  plus twice the attention forward;
- backward, weight gradients: ``2*w`` per token for each linear layer whose weight trains.

Frozen weights save exactly the last term, and no activation gradient is computed below the first
trainable layer. Left out: biases, norms, activations, softmax, embeddings lookups, heads (they run once
per sequence), virtual tokens of prefix/prompt tuning. Positions are counted padded (the kernels compute
them); attention pairs are each row's ``L x L`` square, or its ``L(L+1)/2`` lower triangle for a causal
model, whose right-padded batches run on the kernel's causal path (:func:`attended_pairs`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

PROBE_TOKENS = 8


@dataclass(frozen=True)
class FlopModel:
    linear_weights: int  # weights of the linear layers that run on every token
    input_grad_weights: int  # of which whose input needs a gradient in backward
    trainable_weights: int  # of which whose weight trains (needs a weight gradient)
    attention_layers: int
    attention_width: int  # heads * head dim of one attention layer

    def forward(self, tokens: int, cells: int) -> int:
        return 2 * self.linear_weights * tokens + self._attention(cells)

    def training(self, tokens: int, cells: int) -> dict[str, int]:
        """FLOPs of forward + backward over ``tokens`` positions and ``cells`` query-key pairs."""
        forward = self.forward(tokens, cells)
        activation_grads = 2 * self.input_grad_weights * tokens + 2 * self._attention(cells)
        weight_grads = 2 * self.trainable_weights * tokens
        return {
            "forward": forward,
            "backward_activations": activation_grads,
            "backward_weights": weight_grads,
            "total": forward + activation_grads + weight_grads,
            "saved_by_frozen_weights": 2 * (self.linear_weights - self.trainable_weights) * tokens,
        }

    def with_lm_head(self, flops: dict[str, int], tokens: int, head_weights: int, trains: bool) -> dict[str, int]:
        """``flops`` plus a decoder's LM head over ``tokens`` target positions (only those are projected):
        forward, the gradient into the hidden states, and the head's own gradient when it trains."""
        forward, activations = 2 * head_weights * tokens, 2 * head_weights * tokens
        weights = 2 * head_weights * tokens if trains else 0
        return {"forward": flops["forward"] + forward,
                "backward_activations": flops["backward_activations"] + activations,
                "backward_weights": flops["backward_weights"] + weights,
                "total": flops["total"] + forward + activations + weights,
                "saved_by_frozen_weights": flops["saved_by_frozen_weights"] + (0 if trains else forward)}

    def _attention(self, cells: int) -> int:
        return 4 * self.attention_layers * self.attention_width * cells


def attended_pairs(tokens: int, square_cells: int, causal: bool) -> int:
    """Query-key pairs over padded rows whose lengths sum to ``tokens`` and squared lengths to ``square_cells``:
    every ``L x L`` pair, or ``L(L+1)/2`` per row when each position sees only itself and those before it.

    PyTorch's CPU kernel computes the causal triangle in blocks of 64 queries, a little more than this count.
    """
    return (square_cells + tokens) // 2 if causal else square_cells


def flop_model(encoder: nn.Module, config: Any) -> FlopModel:
    """Probe ``encoder`` once with a short input and read its per-token linear layers."""
    seen: dict[int, tuple[int, bool, bool]] = {}

    def record(module: nn.Module, inputs: tuple[Any, ...], _output: Any) -> None:
        x = inputs[0]
        if x.numel() // module.in_features == PROBE_TOKENS:  # once per token, not once per sequence
            seen[id(module)] = (module.weight.numel(), x.requires_grad, module.weight.requires_grad)

    hooks = [m.register_forward_hook(record) for m in encoder.modules() if isinstance(m, nn.Linear)]
    device = next(encoder.parameters()).device
    ids = torch.full((1, PROBE_TOKENS), 1, dtype=torch.long, device=device)
    was_training = encoder.training
    try:
        encoder.eval()
        with torch.enable_grad():
            encoder(input_ids=ids, attention_mask=torch.ones_like(ids))
    finally:
        for hook in hooks:
            hook.remove()
        encoder.train(was_training)
    return FlopModel(
        linear_weights=sum(w for w, _, _ in seen.values()),
        input_grad_weights=sum(w for w, needs_grad, _ in seen.values() if needs_grad),
        trainable_weights=sum(w for w, _, trains in seen.values() if trains),
        attention_layers=_first_attr(config, "num_hidden_layers", "num_layers"),
        attention_width=_attention_width(config),
    )


def _attention_width(config: Any) -> int:
    heads = _first_attr(config, "num_attention_heads", "num_heads")
    head_dim = getattr(config, "head_dim", None) or getattr(config, "d_kv", None)
    return heads * head_dim if head_dim else _first_attr(config, "hidden_size", "d_model")


def _first_attr(config: Any, *names: str) -> int:
    for name in names:
        value = getattr(config, name, None)
        if value:
            return int(value)
    raise ValueError(f"model config has none of {', '.join(names)}: cannot count attention FLOPs")
