"""The multi-task training loop, readable top to bottom.

    1) seed and accelerator          5) resume (weights, optimiser, schedule, RNG, position)
    2) tasks, tokens, model          6) loop: plan step -> forward every task batch -> weight the
    3) optimiser and schedule           losses -> backward -> clip -> step -> log
    4) accelerate.prepare            7) evaluate, select the best, stop early; 8) test and save

The same code runs on the CPU and under ``accelerate launch`` on several GPUs (DDP): the plan of
each epoch is sharded by rank, and only the main process writes files.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mtpeft.config import RunConfig, dump_config
from mtpeft.data.collate import Batch, collate
from mtpeft.data.samplers import epoch_plan, shard_plan
from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.evaluate.outputs import score
from mtpeft.io import append_jsonl, write_json, write_jsonl, write_text
from mtpeft.ledger import TrainCounters, cpu_info
from mtpeft.train.allocator import keep_freed_memory
from mtpeft.train.artifacts import save_artifacts
from mtpeft.train.build import assemble
from mtpeft.train.checkpoint import (
    CHECKPOINT,
    LoopState,
    load_checkpoint,
    load_trainable_state,
    restore_rng,
    save_checkpoint,
    trainable_state,
)
from mtpeft.train.evaluation import evaluate_untrained, final_evaluation, run_all, tune_thresholds
from mtpeft.train.ledger_record import write_ledger
from mtpeft.train.optim import linear_schedule, make_optimizer
from mtpeft.train.precision import cast_frozen_linears


class TrainingDiverged(MtpeftError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


class StepModule(nn.Module):
    """The multi-task model and the loss weighting as ONE module, so that DDP wraps both and the
    learned task weights train (and synchronise) with the rest."""

    def __init__(self, model: nn.Module, weighting: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.weighting = weighting

    def forward(self, task: str, batch: Batch, tasks_in_step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weighted term, raw loss)`` of one task batch."""
        loss = self.model(task, batch)["loss"]
        return self.weighting.term(task, loss, tasks_in_step), loss


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` -> ``bf16`` where the hardware runs it natively, else ``no`` (fp32)."""
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


def train(config: RunConfig, resume: bool = False, overwrite: bool = False, progress: bool = True,
          interrupt_at_step: int | None = None) -> Path:
    """Train ``config`` and write its run directory; return the directory.

    Args:
        resume: continue from ``checkpoints/last.pt`` if present.
        overwrite: replace an existing run directory instead of refusing.
        interrupt_at_step: stop abruptly (no checkpoint, as a crash would) after this many
            optimiser steps; used by tests of resume.
    """
    cfg = config.train
    run_dir = config.run_dir()
    config_yaml = dump_config(config)
    _prepare_run_dir(run_dir, resume, overwrite)

    # 1) seed and accelerator: one code path for CPU, one GPU and DDP
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    accelerator = make_accelerator(config)
    main = accelerator.is_main_process
    if cfg.keep_freed_memory:
        keep_freed_memory()  # large activations reuse their pages instead of faulting in new ones each step
    start_wall = time.perf_counter()

    # 2) tasks, tokens, model
    built = assemble(config)
    names = sorted(built.tasks)
    lengths = {t: built.encoded[t]["train"].lengths() for t in names}
    if accelerator.mixed_precision == "bf16":
        cast_frozen_linears(built.model)  # the cast autocast would repeat at every call, made once
    step_module = StepModule(built.model, built.weighting)

    # 3) optimiser and schedule (the schedule counts optimiser steps, not micro-steps)
    plan_len = len(shard_plan(_plan(config, lengths, 0), accelerator.process_index, accelerator.num_processes))
    steps_per_epoch = math.ceil(plan_len / cfg.grad_accum)
    total_steps = steps_per_epoch * cfg.epochs
    optimizer = make_optimizer(built.model.encoder, [built.model.heads, built.weighting], cfg)
    scheduler = linear_schedule(optimizer, total_steps, cfg.warmup_ratio)

    # 4) prepare
    step_module, optimizer, scheduler = accelerator.prepare(step_module, optimizer, scheduler)
    raw = accelerator.unwrap_model(step_module)
    step_module.train()  # from_pretrained returns models in eval mode: dropout must be on from step 1

    # 5) resume
    loop, best = LoopState(), None
    checkpoint_path = run_dir / CHECKPOINT
    if resume and checkpoint_path.is_file():
        loop, best = _resume(checkpoint_path, raw, optimizer, scheduler, config_yaml)
        _truncate_log(run_dir / "train_log.jsonl", loop.optimizer_steps)
        accelerator.print(f"resuming {run_dir} at epoch {loop.epoch + 1}, step {loop.optimizer_steps}")
    counters = TrainCounters(**loop.counters) if loop.counters else TrainCounters()
    if main:
        write_json(run_dir / "run.json", {"status": "training", "config": str(run_dir / "config.yaml")})
        write_text(run_dir / "config.yaml", config_yaml)
    if loop.untrained is None and "trivial" in config.baselines:
        # generation tasks are judged against the model before training; measured once, kept on resume
        t0 = time.perf_counter()
        loop.untrained, untrained_rows = evaluate_untrained(built, accelerator, cfg.num_beams)
        loop.eval_time_s += time.perf_counter() - t0
        if main:
            for (task, split), rows in untrained_rows.items():
                write_jsonl(run_dir / "predictions" / f"{task}.{split}.untrained.jsonl", rows)

    def checkpoint() -> None:
        if main:
            loop.counters = asdict(counters)
            save_checkpoint(checkpoint_path, raw, optimizer, scheduler, loop, best, config_yaml)

    def evaluate_and_select() -> bool:
        """Validate, keep the best weights; True when early stopping says stop."""
        nonlocal best
        t0 = time.perf_counter()
        outputs = run_all(built, "validation", accelerator, cfg.num_beams)
        thresholds = tune_thresholds(built, outputs)
        scores = {t: score(outputs[t], thresholds.get(t, 0.5)) for t in names}
        mean = float(np.mean([scores[t][built.tasks[t].spec.metric] for t in names]))
        loop.eval_time_s += time.perf_counter() - t0
        improved = mean > loop.best_score
        if improved:
            loop.best_score, loop.best_epoch, loop.best_step, loop.evals_since_best = \
                mean, loop.epoch, loop.optimizer_steps, 0
            best = trainable_state(raw)
        else:
            loop.evals_since_best += 1
        record = {"event": "eval", "epoch": loop.epoch + 1, "step": loop.optimizer_steps, "mean": mean,
                  "best": improved, "validation": scores}
        loop.history.append(record)
        if main:
            append_jsonl(run_dir / "train_log.jsonl", record)
        accelerator.print(f"validation after step {loop.optimizer_steps}: mean {mean:.4f}"
                          + (" (best)" if improved else ""))
        return cfg.patience is not None and loop.evals_since_best >= cfg.patience

    # 6) loop
    stop = False
    running: dict[str, float] = {}
    while loop.epoch < cfg.epochs and not stop:
        plan = shard_plan(_plan(config, lengths, loop.epoch), accelerator.process_index, accelerator.num_processes)
        bar = tqdm(total=len(plan), initial=loop.step_in_epoch, disable=not (progress and main),
                   desc=f"epoch {loop.epoch + 1}/{cfg.epochs}", dynamic_ncols=True)
        t_epoch = time.perf_counter()
        for index in range(loop.step_in_epoch, len(plan)):
            batches = [(task, collate(built.encoded[task]["train"], idx, built.pad_id).to(accelerator.device))
                       for task, idx in plan[index]]
            task_losses: dict[str, float] = {}
            step_loss = 0.0
            with accelerator.accumulate(step_module):
                for k, (task, batch) in enumerate(batches):
                    # forward and backward one task batch at a time: only its activations are alive,
                    # and the summed gradients equal those of one backward on the step loss;
                    # under DDP, gradients synchronise once, after the step's last task batch
                    sync = nullcontext() if k == len(batches) - 1 else accelerator.no_sync(step_module)
                    with sync:
                        term, loss = step_module(task, batch, len(batches))
                        task_losses[task] = float(loss.detach())  # a sync point, cheap next to the forward
                        if not math.isfinite(task_losses[task]) or not torch.isfinite(term):
                            raise TrainingDiverged(
                                f"loss became {task_losses[task]} for task {task!r} at optimiser step "
                                f"{loop.optimizer_steps}; the last good checkpoint is "
                                f"{checkpoint_path if checkpoint_path.exists() else 'not written yet'}. "
                                "Lower train.lr, or use train.precision=fp32."
                            )
                        accelerator.backward(term)
                    step_loss += float(term.detach())
                if accelerator.sync_gradients and cfg.grad_clip is not None:
                    accelerator.clip_grad_norm_(step_module.parameters(), cfg.grad_clip)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            for task, batch in batches:
                counters.add(task, len(batch), batch.real_tokens, batch.padded_tokens, batch.attention_cells,
                             batch.target_tokens)
                running[task] = 0.9 * running.get(task, task_losses[task]) + 0.1 * task_losses[task]
            loop.step_in_epoch = index + 1
            bar.update(1)
            bar.set_postfix({t: f"{v:.3f}" for t, v in sorted(running.items())}, refresh=False)
            if not accelerator.sync_gradients:
                continue
            loop.optimizer_steps += 1
            counters.optimizer_steps = loop.optimizer_steps
            if main and loop.optimizer_steps % cfg.log_every == 0:
                append_jsonl(run_dir / "train_log.jsonl", {
                    "event": "train", "epoch": loop.epoch + 1, "step": loop.optimizer_steps,
                    "lr": scheduler.get_last_lr()[0], "loss": step_loss, "losses": task_losses,
                    "weights": raw.weighting.weights(), "examples": counters.examples,
                    "real_tokens": counters.real_tokens,
                })
            if interrupt_at_step is not None and loop.optimizer_steps >= interrupt_at_step:
                bar.close()
                raise KeyboardInterrupt(f"simulated crash after step {loop.optimizer_steps}")
            if cfg.eval_every and loop.optimizer_steps % cfg.eval_every == 0 and index + 1 < len(plan):
                loop.train_time_s += time.perf_counter() - t_epoch
                stop = evaluate_and_select()
                t_epoch = time.perf_counter()
                checkpoint()
                if stop:
                    break
            elif cfg.checkpoint_every and loop.optimizer_steps % cfg.checkpoint_every == 0:
                loop.train_time_s += time.perf_counter() - t_epoch
                checkpoint()
                t_epoch = time.perf_counter()
        bar.close()
        loop.train_time_s += time.perf_counter() - t_epoch
        if not stop:
            # 7) evaluate at the end of every epoch, select, stop early
            stop = evaluate_and_select()
            loop.epoch, loop.step_in_epoch = loop.epoch + 1, 0
        checkpoint()

    # 8) the selected weights: tune thresholds on validation, score test, write the run
    if best is not None:
        load_trainable_state(raw, best)
    final = final_evaluation(built, accelerator, cfg.num_beams, loop.untrained, config.baselines)
    metrics = final.metrics
    metrics["selected"] = {"epoch": loop.best_epoch + 1 if loop.best_epoch is not None else None,
                           "optimizer_step": loop.best_step, "validation_mean": loop.best_score}
    if main:
        save_artifacts(run_dir, config, built, final.thresholds)
        for (task, split), rows in final.predictions.items():
            write_jsonl(run_dir / "predictions" / f"{task}.{split}.jsonl", rows)
        write_json(run_dir / "metrics.json", metrics)
        write_ledger(run_dir, config, built, counters, loop, time.perf_counter() - start_wall, accelerator,
                     final.lexical_fit_s)
        write_json(run_dir / "run.json", {"status": "complete", "config": str(run_dir / "config.yaml")})
    accelerator.wait_for_everyone()
    return run_dir


def _plan(config: RunConfig, lengths: dict[str, list[int]], epoch: int) -> list[list[tuple[str, list[int]]]]:
    return epoch_plan(lengths, config.train.batch_size, config.sampling.strategy, config.sampling.temperature,
                      config.train.seed, epoch)


def _prepare_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    if run_dir.exists() and any(run_dir.iterdir()) and not (resume or overwrite):
        raise ConfigError(f"{run_dir}: run directory already exists; pass --resume to continue it or "
                          "--overwrite to start again (output_dir=... writes elsewhere)")
    if overwrite and run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)


def _resume(path: Path, module: nn.Module, optimizer: Any, scheduler: Any,
            config_yaml: str) -> tuple[LoopState, dict[str, torch.Tensor] | None]:
    state = load_checkpoint(path)
    if state["config"] != config_yaml:
        raise ConfigError(f"{path}: the checkpoint was made with a different config; resume with the run's own "
                          f"{path.parent.parent / 'config.yaml'} or start a new run with --overwrite")
    load_trainable_state(module, state["trainable"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    restore_rng(state["rng"])
    return LoopState(**state["loop"]), state["best"]


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
    import json

    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # a line torn by the crash
            continue
        if row.get("step", 0) <= step:
            kept.append(row)
    write_jsonl(path, kept)
