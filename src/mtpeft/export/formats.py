"""`mtpeft export`: one finished run into the format another engine loads, checked before it lands.

Each export is written into a staging folder beside its destination and renamed into place at the end, so a
failed export leaves the destination as it was. Every argument is checked before the run's model is loaded.
"""

from __future__ import annotations

from pathlib import Path

from mtpeft.config import load_config
from mtpeft.errors import ConfigError
from mtpeft.export.common import require
from mtpeft.export.manifest import MANIFEST, file_sha256
from mtpeft.export.onnx_graph import export_onnx
from mtpeft.export.peft_folder import export_peft
from mtpeft.export.sentence_folder import export_sentence_transformers
from mtpeft.run.artifacts import check_complete, load_trained

FORMATS = ("onnx", "sentence-transformers", "peft")
QUANTIZATIONS = ("int8",)
NEEDS = {"onnx": ("onnx", "onnxscript", "onnxruntime"), "sentence-transformers": ("sentence_transformers",),
         "peft": ()}
MARKERS = {"onnx": MANIFEST, "sentence-transformers": "modules.json", "peft": "adapter_config.json"}


def export_dir(run_dir: Path, fmt: str) -> Path:
    """Where an export goes unless told: ``RUN/export/<format>/``."""
    return run_dir / "export" / fmt


def export_run(run_dir: str | Path, fmt: str, task: str | None = None, quantize: str | None = None,
               out: str | Path | None = None, base_model: str | None = None) -> Path:
    """Export ``run_dir`` as ``fmt`` into ``out`` (default :func:`export_dir`); returns the folder written.
    ``base_model``: see :func:`~mtpeft.run.artifacts.load_trained`."""
    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if quantize is not None and (fmt != "onnx" or quantize not in QUANTIZATIONS):
        raise ConfigError(f"--quantize {quantize!r}: expected {' or '.join(QUANTIZATIONS)}, with --format onnx")
    if fmt == "onnx" and task is not None:
        raise ConfigError("--task: the ONNX graph holds every task of the run; --task is for --format "
                          "sentence-transformers and peft")
    if fmt != "onnx" and task is None:
        raise ConfigError(f"--format {fmt}: needs --task, the task to export")
    require(*NEEDS[fmt])
    target = Path(out) if out is not None else export_dir(run_dir, fmt)
    check_destination(run_dir, target, fmt)
    check_complete(run_dir)
    if task is not None:
        tasks = [t.name for t in load_config(run_dir / "config.yaml").tasks]
        if task not in tasks:
            raise ConfigError(f"--task {task!r}: the run has tasks {', '.join(tasks)}")
    trained = load_trained(run_dir, with_data=False, base_model=base_model)
    trained.built.model.eval()  # every exporter checks its output against the model's: no dropout in either
    if fmt == "onnx":
        return export_onnx(trained.config, trained.built, trained.thresholds,
                           file_sha256(run_dir / "heads.safetensors"), target, quantize)
    assert task is not None
    if fmt == "sentence-transformers":
        return export_sentence_transformers(trained, task, target)
    return export_peft(trained, task, target)


def check_destination(run_dir: Path, target: Path, fmt: str) -> None:
    """The export replaces ``target`` whole: only a folder that does not exist yet or an earlier export of the same
    format may be replaced, and never one that holds the run."""
    if target.resolve() in (run_dir.resolve(), *run_dir.resolve().parents):
        raise ConfigError(f"--out {target}: holds the run itself; give a folder of its own (the export replaces it "
                          "whole)")
    if target.exists() and not (target / MARKERS[fmt]).is_file():
        raise ConfigError(f"--out {target}: exists and is not a {fmt} export ({MARKERS[fmt]} missing); give a new "
                          "folder (the export replaces it whole)")

