"""One tiny multi-task run (binary + pair + retrieval on tiny-bert), trained once per session, and the
real server over it on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpeft.config import config_from_dict
from mtpeft.serve import BackgroundServer, Limits, Predictor, create_app
from mtpeft.train import train
from tests.conftest import write_jsonl

API_KEY = "test-key-123"
LIMITS = Limits(max_batch=16, max_wait_ms=50, max_items=8, max_body_bytes=64 * 1024, max_indexes=2,
                max_index_items=100, max_top_k=20, max_text_chars=5000)
MAX_LENGTH = 48


def binary_rows(n: int) -> list[dict]:
    return [{"text": f"void f{i}(char *s) {{ char b[8]; {'strcpy(b, s);' if i % 2 else 'strncpy(b, s, 7);'} }}",
             "label": i % 2} for i in range(n)]


def pair_rows(n: int) -> list[dict]:
    names = ["add", "sub", "mul", "div", "mod", "neg"]
    return [{"a": f"def {names[i % 6]}(x, y): return x", "b": f"def {names[(i + i % 2) % 6]}(x, y): return y",
             "label": 1 - i % 2} for i in range(n)]


def search_rows(n: int) -> list[dict]:
    words = ["sort", "parse", "join", "split", "count", "hash", "open", "read"]
    return [{"query": f"{words[i % 8]} the items number {i}",
             "code": f"def {words[i % 8]}_{i}(items): return {words[i % 8]}(items, {i})"} for i in range(n)]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    data = {"name": write_jsonl(root / "binary.jsonl", binary_rows(40)),
            "pair": write_jsonl(root / "pair.jsonl", pair_rows(40)),
            "search": write_jsonl(root / "search.jsonl", search_rows(40))}
    config = config_from_dict({
        "name": "serve-tiny", "model": "tiny-bert", "method": "lora", "method_args": {"r": 4, "alpha": 8},
        "tasks": [
            {"name": "overflow", "kind": "binary", "source": "jsonl", "path": str(data["name"])},
            {"name": "same", "kind": "pair", "source": "jsonl", "path": str(data["pair"]),
             "reader_args": {"text_field": "a", "text_pair_field": "b"}},
            {"name": "find", "kind": "retrieval", "source": "jsonl", "path": str(data["search"]),
             "reader_args": {"text_field": "query", "text_pair_field": "code", "label_field": None}},
        ],
        "train": {"epochs": 1, "batch_size": 8, "lr": 1e-2, "max_length": MAX_LENGTH, "precision": "fp32"},
        "output_dir": str(root / "run"),
    })
    return train(config, progress=False)


@pytest.fixture(scope="session")
def predictor(tiny_run: Path) -> Predictor:
    return Predictor.from_run(tiny_run)


@pytest.fixture(scope="session")
def server(predictor: Predictor) -> Iterator[str]:
    """Base URL of the real server (uvicorn) with an API key and small limits."""
    with BackgroundServer(create_app(predictor, LIMITS, api_key=API_KEY)) as url:
        yield url
