"""Write ``ledger.json`` for a finished run from what the loop counted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mtpeft.config import RunConfig
from mtpeft.ledger import (
    TrainCounters,
    attended_pairs,
    baseline_costs,
    count_parameters,
    cpu_info,
    dir_bytes,
    flop_model,
    git_commit,
    package_versions,
    peak_rss_bytes,
    task_fingerprints,
)
from mtpeft.run.build import Assembled
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import Ledger, write_record
from mtpeft.train.checkpoint import LoopState


def write_ledger(run_dir: Path, config: RunConfig, built: Assembled, counters: TrainCounters, loop: LoopState,
                 wall_time_s: float, accelerator: Any, lexical_fit_s: dict[str, float] | None = None,
                 peak_rss: int | None = None) -> Ledger:
    """ledger.json; ``counters``: the work of every process of the run; ``lexical_fit_s``: seconds the lexical
    baseline took per task (fit and score); ``peak_rss``: the largest peak of the run's processes (default:
    this process's)."""
    params = count_parameters(built.model.encoder, [built.model.heads, built.weighting], built.method)
    with accelerator.autocast():  # frozen weights may be stored in bf16 (train.precision)
        flop_counts = flop_model(built.model.encoding_module(), built.backbone.model.config)
    pairs = attended_pairs(counters.padded_tokens, counters.attention_cells, built.model.causal)
    flops = flop_counts.training(counters.padded_tokens, pairs)
    head = built.model.lm_head
    if head is not None and not built.backbone.seq2seq:
        flops = flop_counts.with_lm_head(flops, counters.target_tokens, head.weight.numel(), head.weight.requires_grad)
    if loop.probe:  # the frozen pass that fitted the heads first: a forward over the training data
        probe_pairs = attended_pairs(loop.probe["padded_tokens"], loop.probe["attention_cells"], built.model.causal)
        probe = flop_counts.forward(loop.probe["padded_tokens"], probe_pairs)
        flops = {**flops, "probe_forward": probe, "total": flops["total"] + probe}
    full = built.method.storage == "model"
    files = RunFiles(run_dir)
    stored_module = files.storage(built.method.storage)
    heads_files = [files.heads, files.heads_info]
    device = accelerator.device
    ledger = Ledger.model_validate({
        "run_info": {
            "name": config.name, "model": config.model, "model_source": built.backbone.source,
            "method": config.method, "method_targets": built.method.targets[:50],
            "setting": "multi-task" if len(built.tasks) > 1 else "single-task", "tasks": sorted(built.tasks),
            "seed": config.train.seed, "precision": accelerator.mixed_precision, "device": str(device),
            "processes": accelerator.num_processes,
        },
        "parameters": params.as_dict(),
        "storage": {
            "bytes_total": dir_bytes(stored_module, *heads_files),
            "bytes_shared_module": dir_bytes(stored_module),
            "bytes_heads": dir_bytes(*heads_files),
            "note": "what must be stored to serve every task of this run besides the base model"
                    + (" (full fine-tuning stores the whole model)" if full else ""),
        },
        "train_info": {
            "optimizer_steps": counters.optimizer_steps,
            "epochs_completed": loop.epoch,
            "examples": counters.examples,
            "examples_per_task": counters.examples_per_task,
            "real_tokens": counters.real_tokens,
            "padded_tokens": counters.padded_tokens,
            "padding_share": round(1 - counters.real_tokens / max(counters.padded_tokens, 1), 4),
            "wall_time_s": round(wall_time_s, 2),
            "train_time_s": round(loop.train_time_s, 2),
            "eval_time_s": round(loop.eval_time_s, 2),
            "real_tokens_per_s": round(counters.real_tokens / max(loop.train_time_s, 1e-9), 1),
            "peak_rss_bytes": peak_rss if peak_rss is not None else peak_rss_bytes(),
            "peak_device_bytes": torch.cuda.max_memory_allocated() if device.type == "cuda" else None,
            "attention_cells": counters.attention_cells,
            "head_probe": loop.probe,
            "flops": {
                **flops,
                "achieved_gflop_per_s": round(flops["total"] / max(loop.train_time_s, 1e-9) / 1e9, 2),
                "linear_weights_per_token": flop_counts.linear_weights,
                "trainable_linear_weights_per_token": flop_counts.trainable_weights,
                "counted": "analytically from the model's shapes over padded tokens (what the hardware computed): "
                           "matmuls of linear layers and attention, forward + backward, and a decoder's LM head "
                           "over generation targets (and the forward that fitted the heads first, if any); see "
                           "mtpeft.ledger.flops"
                           + ("; an encoder-decoder's decoder is NOT counted" if built.backbone.seq2seq else ""),
                "target_tokens": counters.target_tokens,
            },
        },
        "baselines": baseline_costs(lexical_fit_s or {}),
        "meta_info": {
            "packages": package_versions(),
            "cpu": cpu_info(),
            "git_commit": git_commit(),
            "data": task_fingerprints(built.tasks),
        },
    })
    write_record(files.ledger, ledger)
    return ledger
