"""The efficiency ledger of a study: what serving every task costs per setting, and the paper's ratios.

A *footprint* is everything one (setting, model, method, seed) needs to serve all of its tasks: one run
for MFT, one run per task for SFT. Its stored bytes are the files on disk (SFT-PEFT: N modules + heads,
MFT-PEFT: one module + heads, full fine-tuning: model copies); parameters, examples, tokens, FLOPs and
times are sums over its runs; peak memory is the largest of its runs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from mtpeft.study.collect import RunRecord

Key = tuple[str, str, str, int]  # setting, model, method, seed


@dataclass(frozen=True)
class Footprint:
    setting: str
    model: str
    method: str
    seed: int
    runs: int
    tasks: tuple[str, ...]
    backbone_params: int
    trainable_params: int
    trainable_percent: float  # of one run's parameters (mean over the runs)
    stored_bytes: int
    examples: int
    real_tokens: int
    padded_tokens: int
    flops: int
    frozen_saved_flops: int  # what training every weight would have added over the same tokens
    train_time_s: float
    wall_time_s: float
    peak_rss_bytes: int


def footprints(records: list[RunRecord]) -> dict[Key, Footprint]:
    groups: dict[Key, list[RunRecord]] = defaultdict(list)
    for record in records:
        groups[(record.setting, record.model, record.method, record.seed)].append(record)
    return {key: _footprint(key, runs) for key, runs in sorted(groups.items())}


def _footprint(key: Key, runs: list[RunRecord]) -> Footprint:
    params = [r.ledger.parameters for r in runs]
    train = [r.ledger.train_info for r in runs]
    return Footprint(
        *key, runs=len(runs), tasks=tuple(sorted(t for r in runs for t in r.tasks)),
        backbone_params=params[0].backbone,
        trainable_params=sum(p.trainable for p in params),
        trainable_percent=float(np.mean([p.trainable_percent for p in params])),
        stored_bytes=sum(r.ledger.storage.bytes_total for r in runs),
        examples=sum(t.examples for t in train),
        real_tokens=sum(t.real_tokens for t in train),
        padded_tokens=sum(t.padded_tokens for t in train),
        flops=sum(t.flops.total for t in train),
        frozen_saved_flops=sum(t.flops.saved_by_frozen_weights or 0 for t in train),
        train_time_s=sum(t.train_time_s for t in train),
        wall_time_s=sum(t.wall_time_s for t in train),
        peak_rss_bytes=max(t.peak_rss_bytes for t in train),
    )


@dataclass(frozen=True)
class Savings:
    """MFT against SFT for one model, method and seed (factors > 1 and savings > 0 favour MFT)."""

    model: str
    method: str
    seed: int
    storage_factor: float  # stored bytes SFT / MFT
    trainable_factor: float  # trainable parameters SFT / MFT
    flops_saving_percent: float  # 1 - FLOPs MFT / FLOPs SFT, same method
    time_saving_percent: float  # 1 - train time MFT / SFT, same method
    flops_saving_vs_sft_full_percent: float | None  # 1 - FLOPs MFT / FLOPs SFT-Full
    time_saving_vs_sft_full_percent: float | None


def savings(prints: dict[Key, Footprint]) -> list[Savings]:
    out = []
    for (setting, model, method, seed), mft in prints.items():
        sft = prints.get(("sft", model, method, seed))
        if setting != "mft" or sft is None:
            continue
        sft_full = prints.get(("sft", model, "full", seed))
        out.append(Savings(
            model, method, seed,
            storage_factor=sft.stored_bytes / mft.stored_bytes,
            trainable_factor=sft.trainable_params / mft.trainable_params,
            flops_saving_percent=_saving(mft.flops, sft.flops),
            time_saving_percent=_saving(mft.train_time_s, sft.train_time_s),
            flops_saving_vs_sft_full_percent=_saving(mft.flops, sft_full.flops) if sft_full else None,
            time_saving_vs_sft_full_percent=_saving(mft.train_time_s, sft_full.train_time_s) if sft_full else None,
        ))
    return out


def _saving(new: float, old: float) -> float:
    return 100 * (1 - new / old) if old else float("nan")


ADAM_STATE_BYTES = 8
"""Adam keeps two fp32 moments per trainable parameter (the optimiser of every run here)."""


@dataclass(frozen=True)
class Accounting:
    """One way to price serving N tasks with N modules (SFT) against one shared module (MFT)."""

    name: str
    sft: float
    mft: float
    unit: str

    @property
    def saving_percent(self) -> float:
        return _saving(self.mft, self.sft)


def accountings(sft: Footprint, mft: Footprint) -> list[Accounting]:
    """Every accounting the ledger supports, for one seed: which of them gives a saving, and how large.

    Both sides trained on the same examples, so the training work is the same up to the sampler's draws; the
    savings are in what is stored, what trains, and what answering costs.
    """
    return [
        Accounting("training FLOPs", sft.flops, mft.flops, "FLOPs"),
        Accounting("training FLOPs against SFT with full fine-tuning (every weight's gradient, same tokens)",
                   sft.flops + sft.frozen_saved_flops, mft.flops, "FLOPs"),
        Accounting("examples processed", sft.examples, mft.examples, "examples"),
        Accounting("tokens processed", sft.real_tokens, mft.real_tokens, "tokens"),
        Accounting("training time", sft.train_time_s, mft.train_time_s, "s"),
        Accounting("wall time (loading, training, evaluation, baselines)", sft.wall_time_s, mft.wall_time_s, "s"),
        Accounting("trainable parameters", sft.trainable_params, mft.trainable_params, "parameters"),
        Accounting("optimiser state (Adam, two fp32 moments per trainable parameter)",
                   ADAM_STATE_BYTES * sft.trainable_params, ADAM_STATE_BYTES * mft.trainable_params, "bytes"),
        Accounting("peak memory (largest run; SFT runs one after another)", sft.peak_rss_bytes, mft.peak_rss_bytes,
                   "bytes"),
        Accounting("bytes stored (modules and heads)", sft.stored_bytes, mft.stored_bytes, "bytes"),
        Accounting("backbone passes to answer one input for every task", sft.runs, mft.runs, "passes"),
    ]
