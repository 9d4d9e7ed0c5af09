"""The JSON beside an ONNX export: what the graph reads and returns, and how a client turns each task's
output into an answer (written by :mod:`mtpeft.export.onnx_graph`, read by :mod:`mtpeft.export.onnx_model`
and by anyone serving the graph without mtpeft)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from mtpeft.errors import RunError
from mtpeft.io import read_json

MANIFEST = "mtpeft-onnx.json"
GRAPHS = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
SCHEMA_VERSION = 1
INPUT_IDS, ATTENTION_MASK, WINDOWS, PAIRS = "input_ids", "attention_mask", "windows", "pairs"


def output_name(task: str, retrieval: bool) -> str:
    """A task's graph output: ``<task>.embeddings`` (retrieval) or ``<task>.logits``."""
    return f"{task}.{'embeddings' if retrieval else 'logits'}"


class WindowFeed(BaseModel):
    """How a windowed task cuts an input: its tokens without special tokens, up to ``content + (max_windows - 1)
    * stride``, in windows of ``content`` tokens starting every ``stride``, each wrapped in ``prefix`` + ``suffix``."""

    content: int
    stride: int
    max_windows: int
    prefix: list[int]
    suffix: list[int]
    pooling: Literal["max", "mean"]


class TaskEntry(BaseModel):
    kind: str
    metric: str
    output: str
    threshold: float | None
    feed: str  # how the task's inputs become rows of input_ids (and pairs)
    answer: str  # how the output becomes the answer
    pair_encoding: Literal["joint", "siamese"] | None = None
    pair_separator: str | None = None  # a joint pair: text put before the second input
    windows: WindowFeed | None = None


class Quantization(BaseModel):
    """What ``--quantize int8`` changed, so a reader knows what the int8 graph's numbers stand for."""

    method: str
    weight_type: str
    activations: str
    per_channel: bool
    reduce_range: bool
    quantized_nodes: int
    kept_fp32: list[str]


class OnnxManifest(BaseModel):
    schema_version: int = SCHEMA_VERSION
    run: str
    model: str
    method: str
    merged: bool
    heads_sha256: str  # the run's heads.safetensors at export time: a retrained run makes the export stale
    opset: int
    graphs: dict[str, str]  # precision -> file in this folder
    inputs: dict[str, str]  # graph input -> what it holds
    pad_id: int
    max_length: int
    tasks: dict[str, TaskEntry]
    not_exported: dict[str, str] = {}  # task -> why it is not in the graph
    quantization: Quantization | None = None


def read_manifest(folder: Path) -> OnnxManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise RunError(f"{path}: no ONNX export here; write one with `mtpeft export RUN --format onnx`")
    try:
        return OnnxManifest.model_validate(read_json(path))
    except (ValueError, ValidationError) as err:
        raise RunError(f"{path}: not an mtpeft ONNX manifest ({str(err).splitlines()[0]}); export again") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
