"""Runs exported once per session: the serving tests' tiny run (binary, joint pair, retrieval on tiny-bert) as ONNX
with its int8 graph, and a run whose tasks read windows and siamese pairs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mtpeft.config import config_from_dict
from mtpeft.export import export_run
from mtpeft.train import train
from tests.conftest import write_jsonl
from tests.serve.conftest import binary_rows, pair_rows, predictor, search_rows, tiny_run  # noqa: F401  (fixtures)

WINDOW_LENGTH = 16


@pytest.fixture(scope="session")
def onnx_dir(tiny_run: Path) -> Path:  # noqa: F811
    return export_run(tiny_run, "onnx", quantize="int8")


@pytest.fixture(scope="session")
def windowed_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Binary inputs in windows (max-pooled), siamese pairs in windows (mean-pooled), retrieval truncated; exported."""
    root = tmp_path_factory.mktemp("windowed")
    config = config_from_dict({
        "name": "windowed-tiny", "model": "tiny-bert", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [
            {"name": "overflow", "kind": "binary", "source": "jsonl",
             "path": str(write_jsonl(root / "binary.jsonl", binary_rows(32))), "long_inputs": "windows",
             "max_windows": 3},
            {"name": "same", "kind": "pair", "source": "jsonl", "path": str(write_jsonl(root / "pair.jsonl",
                                                                                        pair_rows(32))),
             "reader_args": {"text_field": "a", "text_pair_field": "b"}, "pair_encoding": "siamese",
             "long_inputs": "windows", "max_windows": 2, "window_pooling": "mean"},
            {"name": "find", "kind": "retrieval", "source": "jsonl",
             "path": str(write_jsonl(root / "search.jsonl", search_rows(32))),
             "reader_args": {"text_field": "query", "text_pair_field": "code", "label_field": None}},
        ],
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "max_length": WINDOW_LENGTH, "precision": "fp32"},
        "output_dir": str(root / "run"),
    })
    run = train(config, progress=False)
    export_run(run, "onnx")
    return run
