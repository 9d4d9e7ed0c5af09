"""Where a run computes and in which precision: one ``Accelerator`` per run, for training and for every
command that reloads a run (eval, predict, serve), so all of them compute alike."""

from __future__ import annotations

import os
from typing import Any

import torch

from mtpeft.config import RunConfig
from mtpeft.errors import ConfigError
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


def launched_processes() -> int:
    """How many processes a launcher (``torchrun``, ``accelerate launch``, MPI) started for this run; 1 without one."""
    for key in ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        if os.environ.get(key, "").isdigit():
            return int(os.environ[key])
    return 1


def is_main_process() -> bool:
    """True in a single process, and in rank 0 of a distributed run (the one that writes and prints)."""
    return not torch.distributed.is_initialized() or torch.distributed.get_rank() == 0


def leave_process_group() -> None:
    """End this process's part in a distributed run (every process calls it, after the last collective)."""
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def on_cpu(config: RunConfig) -> bool:
    """Whether the run computes on the CPU: asked for, or launched as several processes without a GPU.

    accelerate makes a process group of CPU processes (gloo) only when told it runs on the CPU; without this, the
    processes of ``torchrun --nproc_per_node 2`` on a machine without a GPU would each train the whole run alone.
    """
    return config.train.cpu or (launched_processes() > 1 and not torch.cuda.is_available())


def make_accelerator(config: RunConfig) -> Any:
    """One ``Accelerator`` per run; state left by an earlier run in this process is cleared first
    (unless a launcher set up distributed training, which must be kept)."""
    from accelerate import Accelerator, PartialState
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    if not torch.distributed.is_initialized():
        AcceleratorState._reset_state(reset_partial_state=True)
    cpu = on_cpu(config)
    mixed = resolve_precision(config.train.precision, PartialState(cpu=cpu).device)
    accelerator = Accelerator(
        cpu=cpu, mixed_precision=mixed, gradient_accumulation_steps=config.train.grad_accum,
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],  # heads idle in some steps
    )
    launched = launched_processes()
    if accelerator.num_processes != launched:
        raise ConfigError(f"the launcher started {launched} processes but they did not form one process group "
                          f"(accelerate sees {accelerator.num_processes}); each would train the whole run alone")
    return accelerator
