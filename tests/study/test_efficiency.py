"""Footprints and the MFT/SFT ratios on hand-made ledgers."""

from __future__ import annotations

import pytest

from mtpeft.study.collect import RunRecord
from mtpeft.study.efficiency import footprints, savings
from tests.study.records import fake_record


def record(run_id: str, tasks: list[str], method: str, stored: int, flops: int, train_s: float,
           trainable: int, rss: int = 1000) -> RunRecord:
    return fake_record(
        run_id, dict.fromkeys(tasks, 0.5), "sft" if len(tasks) == 1 else "mft", method,
        parameters={"backbone": 100, "trainable": trainable, "trainable_percent": 100 * trainable / 100},
        storage={"bytes_total": stored},
        train_info={"examples": 10 * len(tasks), "real_tokens": 90, "padded_tokens": 100,
                    "flops": {"total": flops, "counted": ""}, "train_time_s": train_s, "wall_time_s": train_s + 1,
                    "peak_rss_bytes": rss})


def test_sft_sums_its_runs_and_the_ratios_follow() -> None:
    records = [
        record("sft-a", ["a"], "lora", stored=10, flops=100, train_s=10, trainable=2, rss=500),
        record("sft-b", ["b"], "lora", stored=10, flops=100, train_s=10, trainable=2, rss=900),
        record("sft-c", ["c"], "lora", stored=10, flops=100, train_s=10, trainable=2, rss=700),
        record("mft", ["a", "b", "c"], "lora", stored=14, flops=240, train_s=15, trainable=4, rss=800),
        record("sft-full-a", ["a"], "full", stored=400, flops=150, train_s=20, trainable=100),
        record("sft-full-b", ["b"], "full", stored=400, flops=150, train_s=20, trainable=100),
        record("sft-full-c", ["c"], "full", stored=400, flops=150, train_s=20, trainable=100),
    ]
    prints = footprints(records)
    sft = prints[("sft", "m", "lora", 1)]
    assert (sft.runs, sft.stored_bytes, sft.flops, sft.trainable_params, sft.peak_rss_bytes) == (3, 30, 300, 6, 900)
    assert sft.tasks == ("a", "b", "c") and sft.examples == 30
    (lora,) = savings(prints)
    assert lora.storage_factor == pytest.approx(30 / 14)
    assert lora.trainable_factor == pytest.approx(6 / 4)
    assert lora.flops_saving_percent == pytest.approx(20.0)  # 1 - 240/300
    assert lora.time_saving_percent == pytest.approx(50.0)  # 1 - 15/30
    assert lora.flops_saving_vs_sft_full_percent == pytest.approx(100 * (1 - 240 / 450))
    assert lora.time_saving_vs_sft_full_percent == pytest.approx(75.0)


def test_no_ratio_without_both_settings() -> None:
    prints = footprints([record("mft", ["a", "b"], "lora", 14, 240, 15, 4)])
    assert savings(prints) == []
