"""Exporting a finished run for other engines: one ONNX graph for every task (ONNX Runtime, and `mtpeft predict` /
`mtpeft serve` with ``--backend onnx``), a sentence-transformers folder for a retrieval task, a peft folder for a
classification task (see docs/export.md)."""

from mtpeft.export.formats import FORMATS, export_dir, export_run
from mtpeft.export.onnx_model import BACKENDS, OnnxTaskModel, onnx_backend

__all__ = ["BACKENDS", "FORMATS", "OnnxTaskModel", "export_dir", "export_run", "onnx_backend"]
