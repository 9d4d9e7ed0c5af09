"""Resumable checkpoints: trainable weights, optimiser, schedule, the loop's own position, and per process
its RNG states and counters.

Only trainable tensors are stored (for PEFT, a few MB instead of the whole model). A checkpoint is
written to a temporary file and renamed, so a kill mid-write leaves the previous one intact. The weights
and the optimiser are the same in every process of a distributed run; the RNG states (dropout) and the
counted work are not, so each process's own are kept and given back to it on resume.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtpeft.io import atomic_open


@dataclass
class LoopState:
    """Where the loop is and what it has seen; everything needed to continue exactly."""

    epoch: int = 0
    step_in_epoch: int = 0  # plan steps (micro-steps) already taken in this epoch
    plan_digest: str | None = None  # of this epoch's batches, so a resume can tell it rebuilt the same ones
    optimizer_steps: int = 0
    best_score: float = float("-inf")
    best_epoch: int | None = None
    best_step: int | None = None
    evals_since_best: int = 0
    train_time_s: float = 0.0
    eval_time_s: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    untrained: dict[str, Any] | None = None  # generation tasks' scores before training (their baseline)
    probe: dict[str, Any] | None = None  # what fitting the heads first computed (train.probe_epochs), once done


def trainable_state(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in module.named_parameters() if p.requires_grad}


def load_trainable_state(module: nn.Module, state: dict[str, torch.Tensor]) -> None:
    params = dict(module.named_parameters())
    missing = sorted(n for n, p in params.items() if p.requires_grad and n not in state)
    unexpected = sorted(set(state) - set(params))
    if missing or unexpected:
        raise RuntimeError(f"checkpoint does not fit the model: missing {missing[:5]}, unexpected {unexpected[:5]}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value)


def process_state(counters: Any) -> dict[str, Any]:
    """What differs between the processes of a run: RNG states and the work counted (a dataclass)."""
    return {"rng": {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()},
            "counters": asdict(counters)}


def save_checkpoint(path: Path, module: nn.Module, optimizer: Any, scheduler: Any, loop: LoopState,
                    best: dict[str, torch.Tensor] | None, config_yaml: str, processes: list[dict[str, Any]]) -> None:
    """``processes``: :func:`process_state` of every process, by rank."""
    payload = {
        "trainable": trainable_state(module),
        "best": best,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "loop": asdict(loop),
        "processes": processes,
        "config": config_yaml,
    }
    with atomic_open(path, "wb") as handle:
        torch.save(payload, handle)


def load_checkpoint(path: Path) -> dict[str, Any]:
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(saved, dict) or not {"trainable", "loop", "processes", "config"} <= set(saved):
        raise ValueError("not a checkpoint of this version of mtpeft (trainable weights, loop position, per-process "
                         "state and config expected)")
    return saved


def restore_rng(rng: dict[str, Any]) -> None:
    random.setstate(rng["python"])
    np.random.set_state(rng["numpy"])
    torch.set_rng_state(rng["torch"])
