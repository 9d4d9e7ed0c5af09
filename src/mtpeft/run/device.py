"""Where a run computes and in which precision: one ``Accelerator`` per run, for training and for every
command that reloads a run (eval, predict, serve), so all of them compute alike."""

from __future__ import annotations

from typing import Any

import torch

from mtpeft.config import RunConfig
from mtpeft.ledger import cpu_info


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the hardware runs it natively, else ``no`` (fp32).

    A CPU without native bf16 (AVX2 only) emulates it hundreds of times slower than fp32, so ``auto``
    detects the instructions instead of assuming them.
    """
    if precision == "fp32":
        return "no"
    if precision == "bf16":
        return "bf16"
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "no"
    capability = torch.backends.cpu.get_cpu_capability()
    return "bf16" if device.type == "cpu" and "AVX512" in capability and cpu_info()["native_bf16"] else "no"


def make_accelerator(config: RunConfig) -> Any:
    """One ``Accelerator`` per run; state left by an earlier run in this process is cleared first
    (unless a launcher set up distributed training, which must be kept)."""
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    if not torch.distributed.is_initialized():
        AcceleratorState._reset_state(reset_partial_state=True)
    mixed = resolve_precision(config.train.precision, PartialState(cpu=config.train.cpu).device)
    return Accelerator(
        cpu=config.train.cpu, mixed_precision=mixed, gradient_accumulation_steps=config.train.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],  # heads idle in some steps
    )
