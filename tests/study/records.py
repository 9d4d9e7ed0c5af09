"""Hand-made run records for the study arithmetic tests: typed like the files a run writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtpeft.run.schema import Ledger, Metrics
from mtpeft.study.collect import RunRecord


def fake_record(run_id: str, scores: dict[str, float], setting: str, method: str = "lora", seed: int = 1,
                model: str = "m", **ledger: dict[str, Any]) -> RunRecord:
    """A finished run with test ``scores`` (accuracy) per task; ``ledger`` sections update the defaults."""
    metrics = Metrics.model_validate({"tasks": {t: {"kind": "binary", "metric": "accuracy", "test": {"accuracy": s}}
                                                for t, s in scores.items()}, "mean": {}})
    sections: dict[str, dict[str, Any]] = {
        "run_info": {"name": run_id, "model": model, "model_source": model, "method": method, "setting": setting,
                     "tasks": sorted(scores), "seed": seed, "precision": "no", "device": "cpu", "processes": 1},
        "parameters": {"total": 100, "backbone": 100, "method_trainable": 0, "heads": 0, "trainable": 0,
                       "trainable_percent": 0.0, "method_trainable_percent": 0.0},
        "storage": {"bytes_total": 0, "bytes_shared_module": 0, "bytes_heads": 0, "note": ""},
        "train_info": {"optimizer_steps": 1, "examples": 0, "examples_per_task": {}, "real_tokens": 0,
                       "padded_tokens": 0, "padding_share": 0.0, "wall_time_s": 0.0, "train_time_s": 0.0,
                       "real_tokens_per_s": 0.0, "peak_rss_bytes": 0, "flops": {"total": 0, "counted": ""}},
        "meta_info": {"packages": {}, "git_commit": None, "data": {}},
    }
    for name, update in ledger.items():
        sections[name] = {**sections[name], **update}
    config = {"model": model, "method": method, "train": {"seed": seed}}
    return RunRecord(run_id, Path(run_id), config, metrics, Ledger.model_validate(sections), setting)
