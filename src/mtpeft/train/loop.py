"""The multi-task training loop, readable top to bottom.

:func:`train` runs, in this order:

    1) seed and accelerator            5) resume (weights, optimiser, schedule, RNG, position); a fresh run
    2) tasks, tokens, model               may first fit its heads on the untrained features (:func:`fit_heads_first`)
    3) optimiser and schedule          6) the baseline of generation tasks: the model before training
    4) accelerate.prepare (3 and 4:    7) epochs of steps (:func:`train_step`), each followed by
       :func:`open_session`)              evaluation and selection (:func:`evaluate_and_select`) and a
                                          checkpoint (:func:`save_progress`)
                                       8) the selected weights on validation and test; the run directory

Every step function takes the one :class:`Session` that holds the run's moving parts. The same code runs
in one process and in several (DDP, launched by ``torchrun`` or ``accelerate launch``, on GPUs or CPU
processes): each process trains its shard of every epoch's plan and gradients are averaged across them,
evaluation shares the examples out and gathers them back, counters are summed once at the end, and only the
main process writes files.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtpeft.config import RunConfig, dump_config
from mtpeft.data.collate import Batch, collate
from mtpeft.data.samplers import epoch_plan, shard_plan
from mtpeft.errors import ConfigError, MtpeftError
from mtpeft.evaluate.outputs import DEFAULT_THRESHOLD, SplitOutput, score
from mtpeft.evaluate.sharding import Shard
from mtpeft.io import append_jsonl, remove_stale_temps, write_jsonl, write_text
from mtpeft.ledger import TrainCounters, peak_rss_bytes
from mtpeft.run.artifacts import save_artifacts
from mtpeft.run.build import Assembled, assemble, reading
from mtpeft.run.device import make_accelerator
from mtpeft.run.directory import RunDirectory, plan_run_directory
from mtpeft.run.evaluation import evaluate_untrained, final_evaluation, run_all, tune_thresholds
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import Selected, write_record
from mtpeft.train.allocator import RELEASE_EVERY_STEPS, keep_freed_memory, release_freed_memory
from mtpeft.train.checkpoint import (
    LoopState,
    load_checkpoint,
    load_trainable_state,
    process_state,
    restore_rng,
    save_checkpoint,
    trainable_state,
)
from mtpeft.train.head_probe import probe_heads
from mtpeft.train.ledger_record import write_ledger
from mtpeft.train.optim import linear_schedule, make_optimizer
from mtpeft.train.precision import cast_frozen_linears
from mtpeft.train.progress import EvaluationWork, RunProgress

Plan = list[list[tuple[str, list[int]]]]  # per step: (task, example indices) of each task batch


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


@dataclass
class Session:
    """Everything one training run holds; the step functions below read and update it."""

    config: RunConfig
    config_yaml: str  # the resolved config: written to the run and checked on resume
    directory: RunDirectory  # where the run is written while it trains, and where it ends up
    accelerator: Any
    built: Assembled
    module: Any  # the StepModule as accelerate prepared it (DDP-wrapped on several processes)
    optimizer: Any
    scheduler: Any
    state: LoopState = field(default_factory=LoopState)
    counters: TrainCounters = field(default_factory=TrainCounters)
    best: dict[str, torch.Tensor] | None = None  # trainable weights of the best validation score so far
    best_validation: dict[str, SplitOutput] | None = None  # their validation outputs (not kept across a resume)
    running: dict[str, float] = field(default_factory=dict)  # smoothed per-task losses for the progress bar
    grad_norm: torch.Tensor | None = None  # the last optimiser step's gradient norm before clipping (None: no clip)
    progress: RunProgress | None = None  # the run's progress line (set once the run's position is known)

    @property
    def raw(self) -> StepModule:
        return self.accelerator.unwrap_model(self.module)

    @property
    def run_dir(self) -> Path:
        return self.directory.workdir

    @property
    def files(self) -> RunFiles:
        return self.directory.files

    @property
    def main(self) -> bool:
        return bool(self.accelerator.is_main_process)

    @property
    def processes(self) -> int:
        return int(self.accelerator.num_processes)

    def from_main(self, value: Any) -> Any:
        """The main process's ``value``, in every process."""
        from accelerate.utils import broadcast_object_list

        return broadcast_object_list([value], from_process=0)[0] if self.processes > 1 else value

    def gathered(self, value: Any) -> list[Any]:
        """``value`` of every process, by rank (a list of one in a single process)."""
        from accelerate.utils import gather_object

        return gather_object([value]) if self.processes > 1 else [value]

    def own_steps(self, whole: Plan) -> Plan:
        """This process's share of an epoch's steps."""
        return shard_plan(whole, self.accelerator.process_index, self.processes)

    def whole_plan(self, epoch: int) -> Plan:
        """Every process's steps of the epoch: a function of the seed, the epoch and the training data's sizes."""
        sizes = {t: self.built.encoded[t]["train"].input_sizes() for t in sorted(self.built.tasks)}
        return epoch_plan(sizes, self.config.train.batch_size, self.config.sampling.strategy,
                          self.config.sampling.temperature, self.config.train.seed, epoch, repeats=self.built.repeats)


def on_optimizer_step(state: LoopState) -> None:
    """Called after every optimiser step (and its log line), before any evaluation or checkpoint.

    Does nothing; tests replace it to crash a run at a chosen step, as a kill would.
    """


def train(config: RunConfig, resume: bool = False, overwrite: bool = False, progress: bool = True) -> Path:
    """Train ``config`` and write its run directory; return the directory.

    Args:
        resume: continue from ``checkpoints/last.pt`` if present.
        overwrite: replace an existing run directory instead of refusing.
        progress: show the progress line (steps, examples per second, time left for the whole run).
    """
    cfg = config.train
    config_yaml = dump_config(config)
    directory = plan_run_directory(config.run_dir(), config_yaml, resume, overwrite)  # refuses early; deletes nothing
    start = time.perf_counter()

    # 1) seed and accelerator: one code path for CPU, one GPU and DDP
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    accelerator = make_accelerator(config)
    if cfg.keep_freed_memory:
        keep_freed_memory()  # large activations reuse their pages instead of faulting in new ones each step

    # 2) tasks, tokens, model; 3) and 4) in open_session
    built = assemble(config)
    session = open_session(config, config_yaml, directory, accelerator, built)

    # 5) the run directory, emptied only now that the config, the data and the model have all loaded (a finished
    #    run being trained again stays as it is until the new one has finished: run/directory.py); resume
    if session.main:
        directory.claim(fresh=overwrite)
    accelerator.wait_for_everyone()
    if resume:
        restore(session)
    if session.main:
        session.files.mark("training")
        write_text(session.files.config, session.config_yaml)
    session.progress = run_progress(session, progress)
    if cfg.probe_epochs and session.state.probe is None:
        fit_heads_first(session, progress)

    # 6) generation tasks are judged against the model before training; measured once, kept on resume
    if session.state.untrained is None and "trivial" in config.baselines:
        with timed(session.state, "eval_time_s"):
            session.state.untrained, rows = evaluate_untrained(built, accelerator, cfg)
        if session.main:
            for (task, split), task_rows in rows.items():
                write_jsonl(session.files.predictions(task, f"{split}.untrained"), task_rows)

    # 7) epochs
    stop = False
    while session.state.epoch < cfg.epochs and not stop:
        stop = run_epoch(session)

    # 8) the selected weights: thresholds tuned on validation, test scored, the run directory written
    session.progress.close()
    finish(session, start)
    return directory.target


def run_progress(session: Session, enabled: bool) -> RunProgress:
    """The progress line of the whole run, from where it stands (a resumed run starts part of the way)."""
    cfg, state = session.config.train, session.state
    per_epoch = len(session.own_steps(session.whole_plan(state.epoch)))
    steps_left = (cfg.epochs - state.epoch) * per_epoch - state.step_in_epoch
    mid_epoch = steps_left // cfg.grad_accum // cfg.eval_every if cfg.eval_every else 0
    examples = {split: sum(len(session.built.encoded[t][split]) for t in session.built.tasks)
                for split in ("validation", "test")}
    work = EvaluationWork(examples["validation"], examples["test"], passes=cfg.epochs - state.epoch + mid_epoch)
    return RunProgress(cfg.epochs * per_epoch, cfg.epochs * per_epoch - steps_left, work, cfg.epochs,
                       enabled and session.main)


def open_session(config: RunConfig, config_yaml: str, directory: RunDirectory, accelerator: Any,
                 built: Assembled) -> Session:
    """What training steps need, ready to step: the model as accelerate prepared it, in training mode, with its
    optimiser and schedule (``bench/gpu.py`` steps a session of its own through :func:`train_step`)."""
    cfg = config.train
    if accelerator.mixed_precision == "bf16":
        cast_frozen_linears(built.model)  # the cast autocast would repeat at every call, made once

    # the schedule counts optimiser steps, not micro-steps
    optimizer = make_optimizer(built.model.encoder, [built.model.heads, built.weighting], cfg)
    session = Session(config, config_yaml, directory, accelerator, built, StepModule(built.model, built.weighting),
                      optimizer, None)
    steps_per_epoch = math.ceil(len(session.own_steps(session.whole_plan(0))) / cfg.grad_accum)
    session.scheduler = linear_schedule(optimizer, steps_per_epoch * cfg.epochs, cfg.warmup_ratio)

    # prepare; not the schedule: accelerate would step it once per process at every optimiser step, for
    # schedules counted in one process's steps, while this one counts the optimiser steps themselves
    session.module, session.optimizer = accelerator.prepare(session.module, session.optimizer)
    session.module.train()  # from_pretrained returns models in eval mode: dropout must be on from step 1
    if session.processes > 1:  # the same weights everywhere (DDP broadcast rank 0's); dropout differs per process
        torch.manual_seed(cfg.seed + accelerator.process_index)
    return session


def fit_heads_first(session: Session, progress: bool) -> None:
    """LP-FT (:mod:`mtpeft.train.head_probe`): the heads fitted on the untrained model's features, validated
    (step 0: if fine-tuning never beats the probe alone, the probe is what the run keeps), then a checkpoint, so
    that a resumed run never repeats it. Every process fits the same heads from the same cached
    vectors; rank 0's are then broadcast, so that dropout's per-process randomness cannot split them."""
    built, cfg = session.built, session.config.train
    heads = session.raw.model.heads
    with timed(session.state, "train_time_s"):
        work = probe_heads(session.raw.model, built.encoded, built.pad_id, cfg, session.accelerator.device,
                           session.accelerator.autocast, Shard.of(session.accelerator), built.repeats,
                           progress and session.main)
    if session.processes > 1:
        for param in heads.parameters():
            torch.distributed.broadcast(param.data, src=0)
    shares = session.gathered((work.examples, work.padded_tokens, work.attention_cells))
    examples, padded, cells = (sum(column) for column in zip(*shares, strict=True))
    session.state.probe = {"epochs": cfg.probe_epochs, "examples": examples, "padded_tokens": padded,
                           "attention_cells": cells, "losses": work.losses}
    if session.main:
        append_jsonl(session.files.train_log, {"event": "probe", "step": 0, **session.state.probe})
    session.accelerator.print("heads fitted on the untrained features: "
                              + ", ".join(f"{t} loss {v[0]:.3f} -> {v[-1]:.3f}" for t, v in work.losses.items()))
    evaluate_and_select(session)  # the probe alone competes in the selection
    save_progress(session)


def run_epoch(session: Session) -> bool:
    """The rest of the current epoch, then its evaluation and checkpoint; True when early stopping says stop."""
    cfg, state = session.config.train, session.state
    whole = session.whole_plan(state.epoch)
    check_same_batches(session, whole)
    plan = session.own_steps(whole)
    for index in range(state.step_in_epoch, len(plan)):
        examples, began = session.counters.examples, time.perf_counter()
        with timed(state, "train_time_s"):
            stepped = train_step(session, plan[index])
        state.step_in_epoch = index + 1
        session.progress.stepped(session.counters.examples - examples, time.perf_counter() - began, state.epoch,
                                 session.running)
        if not stepped:
            continue
        on_optimizer_step(state)
        if cfg.keep_freed_memory and state.optimizer_steps % RELEASE_EVERY_STEPS == 0:
            release_freed_memory()  # kept memory fragments with the run; give back its free part now and then
        if cfg.eval_every and state.optimizer_steps % cfg.eval_every == 0 and index + 1 < len(plan):
            stop = evaluate_and_select(session)
            save_progress(session)
            if stop:
                return True
        elif cfg.checkpoint_every and state.optimizer_steps % cfg.checkpoint_every == 0:
            save_progress(session)
    stop = evaluate_and_select(session)  # at the end of every epoch
    state.epoch, state.step_in_epoch = state.epoch + 1, 0
    save_progress(session)
    return stop


def check_same_batches(session: Session, whole: Plan) -> None:
    """Keep a digest of the epoch's batches in the loop state; a resume mid-epoch warns when it rebuilt other ones
    (the training data or mtpeft's batching changed since), as the steps it skips are then not the ones taken."""
    state = session.state
    digest = hashlib.sha256(json.dumps(whole).encode()).hexdigest()[:16]
    if state.step_in_epoch and state.plan_digest not in (None, digest):
        warnings.warn(f"{session.run_dir}: epoch {state.epoch + 1}'s batches differ from those it began with (the "
                      "training data or mtpeft's batching changed since); its remaining "
                      f"{len(whole) - state.step_in_epoch} steps use the new batches, so this epoch may see some "
                      "examples twice and others not at all", stacklevel=2)
    state.plan_digest = digest


def train_step(session: Session, step: list[tuple[str, list[int]]]) -> bool:
    """Forward and backward every task batch of one plan step; True when it completed an optimiser step."""
    accelerator, built, state = session.accelerator, session.built, session.state
    batches = [(task, collate(built.encoded[task]["train"], idx, built.pad_id).to(accelerator.device))
               for task, idx in step]
    task_losses: dict[str, float] = {}
    step_loss = 0.0
    with accelerator.accumulate(session.module):
        for k, (task, batch) in enumerate(batches):
            # forward and backward one task batch at a time: only its activations are alive, and the summed
            # gradients equal those of one backward on the step loss; under DDP, gradients synchronise once,
            # after the step's last task batch
            sync = nullcontext() if k == len(batches) - 1 else accelerator.no_sync(session.module)
            with sync:
                term, loss = session.module(task, batch, len(batches))
                task_losses[task] = float(loss.detach())  # a sync point, cheap next to the forward
                if not math.isfinite(task_losses[task]) or not torch.isfinite(term):
                    raise TrainingDiverged(
                        f"loss became {task_losses[task]} for task {task!r} at optimiser step {state.optimizer_steps}"
                        f"; the last good checkpoint is {_last_checkpoint(session)}. Lower train.lr, or use "
                        "train.precision=fp32."
                    )
                accelerator.backward(term)
            step_loss += float(term.detach())
        if accelerator.sync_gradients and session.config.train.grad_clip is not None:
            session.grad_norm = accelerator.clip_grad_norm_(session.module.parameters(), session.config.train.grad_clip)
        session.optimizer.step()  # accelerate's optimiser steps only when gradients synchronise
        if accelerator.sync_gradients:
            session.scheduler.step()
        session.optimizer.zero_grad()
    for task, batch in batches:
        session.counters.add(task, len(batch), batch.real_tokens, batch.padded_tokens, batch.attention_cells,
                             batch.target_tokens)
        session.running[task] = 0.9 * session.running.get(task, task_losses[task]) + 0.1 * task_losses[task]
    if not accelerator.sync_gradients:
        return False
    state.optimizer_steps += 1
    session.counters.optimizer_steps = state.optimizer_steps
    if session.main and state.optimizer_steps % session.config.train.log_every == 0:
        append_jsonl(session.files.train_log, {
            "event": "train", "epoch": state.epoch + 1, "step": state.optimizer_steps,
            "lr": session.scheduler.get_last_lr()[0], "loss": step_loss, "losses": task_losses,
            "weights": session.raw.weighting.weights(), "examples": session.counters.examples,
            "real_tokens": session.counters.real_tokens,
            "grad_norm": None if session.grad_norm is None else float(session.grad_norm),
        })
    return True


def evaluate_and_select(session: Session) -> bool:
    """Validate, keep the best weights; True when early stopping says stop."""
    built, state = session.built, session.state
    names = sorted(built.tasks)
    with timed(state, "eval_time_s"):
        outputs = run_all(built, "validation", session.accelerator, session.config.train,
                          watch=session.progress.evaluating)
        thresholds = tune_thresholds(built, outputs)
        scores = {t: score(outputs[t], thresholds.get(t, DEFAULT_THRESHOLD)) for t in names}
        mean = float(np.mean([scores[t][built.tasks[t].spec.metric] for t in names]))
    improved = mean > state.best_score
    if improved:
        state.best_score, state.best_epoch, state.best_step, state.evals_since_best = \
            mean, state.epoch, state.optimizer_steps, 0
        session.best, session.best_validation = trainable_state(session.raw), outputs
    else:
        state.evals_since_best += 1
    record = {"event": "eval", "epoch": state.epoch + 1, "step": state.optimizer_steps, "mean": mean,
              "best": improved, "validation": scores}
    state.history.append(record)
    if session.main:
        append_jsonl(session.files.train_log, record)
    session.accelerator.print(f"validation after step {state.optimizer_steps}: mean {mean:.4f}"
                              + (" (best)" if improved else ""))
    patience = session.config.train.patience
    return patience is not None and state.evals_since_best >= patience


def save_progress(session: Session) -> None:
    """The resumable checkpoint: trainable weights, the best ones, optimiser, schedule, position, and every
    process's RNG states and counters."""
    processes = session.gathered(process_state(session.counters))
    if session.main:
        save_checkpoint(session.files.checkpoint, session.raw, session.optimizer, session.scheduler,
                        session.state, session.best, session.config_yaml, processes)
    session.accelerator.wait_for_everyone()  # no process runs ahead of a checkpoint that may be its resume point


def restore(session: Session) -> None:
    """Continue from the run's checkpoint, if it has one, which must come from the same resolved config.

    The main process reads it and hands it to the others, so machines need not share a file system.
    """
    path = session.files.checkpoint
    saved = None
    if session.main and path.is_file():
        with reading(path, "the checkpoint (weights, optimiser, position)"):
            saved = load_checkpoint(path)
    saved = session.from_main(saved)
    if saved is None:
        return
    if saved["config"] != session.config_yaml:
        raise ConfigError(f"{path}: the checkpoint was made with a different config; resume with the run's own "
                          f"{session.files.config} or start a new run with --overwrite")
    if len(saved["processes"]) != session.processes:
        raise ConfigError(f"{path}: the checkpoint was made by {len(saved['processes'])} process(es) and this run has "
                          f"{session.processes}; each process's share of the data depends on the count, so resume "
                          "with the same number of processes")
    load_trainable_state(session.raw, saved["trainable"])
    session.optimizer.load_state_dict(saved["optimizer"])
    session.scheduler.load_state_dict(saved["scheduler"])
    mine = saved["processes"][session.accelerator.process_index]
    restore_rng(mine["rng"])
    session.state, session.best = LoopState(**saved["loop"]), saved["best"]
    session.counters = TrainCounters(**mine["counters"])
    if session.main:
        _truncate_log(session.files.train_log, session.state.optimizer_steps)
    session.accelerator.print(f"resuming {session.run_dir} at epoch {session.state.epoch + 1}, "
                              f"step {session.state.optimizer_steps}")


def finish(session: Session, start: float) -> None:
    """Score the selected weights (and the baselines) on validation and test, and write the run directory.

    ``start``: when this process began the run (``time.perf_counter()``); the ledger's wall time ends after
    the final scoring, which it includes (as it does in ``eval_time_s``). A run trained again over a finished one
    replaces it only here, once every file is written (:meth:`RunDirectory.publish`).
    """
    state, run_dir = session.state, session.run_dir
    if session.best is not None:
        load_trainable_state(session.raw, session.best)
    baselines = [b for b in session.config.baselines if session.main or b != "lexical"]  # fitted where it is written
    with timed(state, "eval_time_s"):
        final = final_evaluation(session.built, session.accelerator, session.config.train, state.untrained, baselines,
                                 validation=session.best_validation, watch=session.progress.evaluating)
    wall_time_s = time.perf_counter() - start
    counters = TrainCounters.combined(session.gathered(session.counters))
    peak_rss = max(session.gathered(peak_rss_bytes()))
    metrics = final.metrics
    metrics.selected = Selected(epoch=state.best_epoch + 1 if state.best_epoch is not None else None,
                                optimizer_step=state.best_step, validation_mean=state.best_score)
    if session.main:
        save_artifacts(run_dir, session.config, session.built, final.thresholds)
        for (task, split), rows in final.predictions.items():
            write_jsonl(session.files.predictions(task, split), rows)
        write_record(session.files.metrics, metrics)
        write_ledger(run_dir, session.config, session.built, counters, state, wall_time_s,
                     session.accelerator, final.lexical_fit_s, peak_rss)
        remove_stale_temps(run_dir)  # what a kill mid-write left before a --resume finished the run
        session.files.mark("complete")
        session.directory.publish()
    session.accelerator.wait_for_everyone()


@contextmanager
def timed(state: LoopState, field_name: str) -> Iterator[None]:
    """Add the block's wall time to ``state.<field_name>`` (kept in checkpoints, so resumed runs count it all)."""
    start = time.perf_counter()
    try:
        yield
    finally:
        setattr(state, field_name, getattr(state, field_name) + time.perf_counter() - start)


def _last_checkpoint(session: Session) -> str:
    path = session.files.checkpoint
    return str(path) if path.exists() else "not written yet"


def _truncate_log(path: Path, step: int) -> None:
    """Drop log lines written after the checkpoint we resume from (they will be written again)."""
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
