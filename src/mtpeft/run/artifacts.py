"""Saving a trained run's weights and loading a finished run back (the file names: :mod:`mtpeft.run.files`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from mtpeft.config import RunConfig, dump_config, load_config
from mtpeft.errors import RunError
from mtpeft.io import read_json, save_safetensors, write_json, write_text
from mtpeft.run.base_model import resolve_base
from mtpeft.run.build import Assembled, assemble, load_tasks, reading
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import Metrics, read_metrics


def save_artifacts(run_dir: Path, config: RunConfig, built: Assembled, thresholds: dict[str, float]) -> None:
    """Write config, the shared module and the heads (each file atomically)."""
    files = RunFiles(run_dir)
    write_text(files.config, dump_config(config))
    built.method.save(built.model.encoder, built.backbone, files.storage(built.method.storage))
    tensors = {f"heads.{k}": v for k, v in built.model.heads.state_dict().items()}
    tensors.update({f"loss_weighting.{k}": v for k, v in built.weighting.state_dict().items()})
    save_safetensors(files.heads, tensors, metadata={"format": "pt"})
    write_json(files.heads_info, {
        "pooling": built.model.pooling,
        "virtual_tokens": built.model.virtual_tokens,
        "loss_weighting": {"kind": config.loss_weighting, "weights": built.weighting.weights()},
        "tasks": {name: {"kind": str(data.spec.kind), "metric": data.spec.metric,
                         "head": type(built.model.heads[name]).__name__, "threshold": thresholds.get(name)}
                  for name, data in built.tasks.items()},
    })


@dataclass
class TrainedRun:
    config: RunConfig
    built: Assembled
    thresholds: dict[str, float]
    metrics: Metrics


def check_complete(run_dir: Path) -> None:
    """A finished training run with its weights, or an error that says how to finish it."""
    files = RunFiles(run_dir)
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such run directory")
    missing = [p.name for p in files.required() if not p.exists()]
    if not files.stored_module().is_dir():
        missing.append("adapter/ or model/")
    if missing:
        raise RunError(f"{run_dir}: incomplete run (missing {', '.join(missing)}); finish it with "
                       f"`mtpeft train {files.config} --resume`")
    if not files.is_complete():  # every file is there, but the loop never wrote its last word
        raise RunError(f"{files.status}: the run is not marked complete (it is training, or stopped before "
                       "its last write, and its files may mix two trainings); finish it with "
                       f"`mtpeft train {files.config} --resume`, or train it again with --overwrite")


def load_trained(run_dir: Path, with_data: bool = True, base_model: str | None = None) -> TrainedRun:
    """Rebuild a finished run from its files alone: the same model, heads and thresholds.

    ``with_data=False`` skips reading and tokenising the tasks' data (``built.encoded`` splits are empty):
    serving needs only the model, and must work where the training data is absent. ``base_model``
    (``--base-model``) points at the base weights where the run's own record of them does not lead here
    (:func:`~mtpeft.run.base_model.resolve_base`).
    """
    check_complete(run_dir)
    files = RunFiles(run_dir)
    config = load_config(files.config)
    built = assemble(config, tasks=None if with_data else load_tasks(config, with_data=False),
                     adapter_dir=files.stored_module(), base=resolve_base(run_dir, config.model, base_model))
    with reading(files.heads, "the task heads of the config's tasks"):
        state = load_file(str(files.heads))
        heads = {k.removeprefix("heads."): v for k, v in state.items() if k.startswith("heads.")}
        weights = {k.removeprefix("loss_weighting."): v for k, v in state.items() if k.startswith("loss_weighting.")}
        built.model.heads.load_state_dict(heads, strict=True)
        built.weighting.load_state_dict(weights, strict=True)
    with reading(files.heads_info, "the tuned thresholds ({\"tasks\": {task: {\"threshold\": ...}}})"):
        info = read_json(files.heads_info)
        thresholds = {t: float(v["threshold"]) for t, v in info["tasks"].items() if v.get("threshold") is not None}
    return TrainedRun(config, built, thresholds, read_metrics(files.metrics))
