"""AdamW with separate groups for the shared module and the heads, and a linear warm-up/decay schedule."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from mtpeft.config import TrainConfig


def _no_decay(name: str, param: nn.Parameter) -> bool:
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def make_optimizer(shared: nn.Module, heads: list[nn.Module], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Groups: shared-module weights (decayed), shared-module biases/norms, heads + loss weights."""
    decay, no_decay = [], []
    for name, p in shared.named_parameters():
        if p.requires_grad:
            (no_decay if _no_decay(name, p) else decay).append(p)
    head_params = [p for m in heads for p in m.parameters() if p.requires_grad]
    head_lr = cfg.head_lr or cfg.lr
    groups: list[dict[str, Any]] = [
        {"params": decay, "lr": cfg.lr, "weight_decay": cfg.weight_decay, "name": "shared"},
        {"params": no_decay, "lr": cfg.lr, "weight_decay": 0.0, "name": "shared_no_decay"},
        {"params": head_params, "lr": head_lr, "weight_decay": 0.0, "name": "heads"},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]])


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int, warmup_ratio: float) -> Any:
    """Linear warm-up over ``warmup_ratio`` of the steps, then linear decay to 0."""
    warmup = round(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
