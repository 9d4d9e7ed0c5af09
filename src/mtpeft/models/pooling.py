"""One vector per input from the encoder's hidden states."""

from __future__ import annotations

from typing import Any

import torch

from mtpeft.errors import ConfigError


def pool(kind: str, hidden: torch.Tensor, mask: torch.Tensor, outputs: Any = None) -> torch.Tensor:
    """Pool ``hidden`` (batch, seq, h) under ``mask`` (batch, seq) into (batch, h).

    - ``mean``: average of the real (unmasked) positions;
    - ``cls``: the first position;
    - ``pooler``: the backbone's own pooler output (BERT/RoBERTa);
    - ``last``: the last real position (for decoders, the only one that saw the whole input).
    """
    if kind == "mean":
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)
    if kind == "cls":
        return hidden[:, 0]
    if kind == "last":
        last = mask.sum(1).clamp(min=1) - 1  # right padding: the last real token
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if kind == "pooler":
        pooled = getattr(outputs, "pooler_output", None)
        if pooled is None:
            raise ConfigError("pooling: 'pooler' needs a backbone with a pooler (BERT/RoBERTa); use mean, cls or last")
        return pooled
    raise ValueError(f"unknown pooling {kind!r}; valid: cls, last, mean, pooler")


def pool_windows(kind: str, vectors: torch.Tensor, owner: torch.Tensor, count: int) -> torch.Tensor:
    """Pool row vectors ``(rows, h)`` into one per input ``(count, h)``: ``owner[r]`` is the input of row ``r``.

    ``max`` keeps, per feature, the strongest window (a vulnerable line in any window marks the function);
    ``mean`` averages the windows. Gradients flow to every window (``mean``) or to the chosen ones (``max``).

    Example:
        >>> rows = torch.tensor([[1.0, 4.0], [3.0, 2.0], [5.0, 0.0]])
        >>> pool_windows("max", rows, torch.tensor([0, 0, 1]), 2).tolist()
        [[3.0, 4.0], [5.0, 0.0]]
        >>> pool_windows("mean", rows, torch.tensor([0, 0, 1]), 2).tolist()
        [[2.0, 3.0], [5.0, 0.0]]
    """
    if kind not in ("max", "mean"):
        raise ValueError(f"unknown window pooling {kind!r}; valid: max, mean")
    index = owner.to(vectors.device)[:, None].expand_as(vectors)
    out = vectors.new_zeros(count, vectors.shape[-1])
    return out.scatter_reduce(0, index, vectors, reduce="amax" if kind == "max" else "mean", include_self=False)
