"""Shared fixtures: seeded RNGs, the real datasets beside the repo, tiny models and small task files."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = (ROOT / ".." / "shared" / "datasets").resolve()


@pytest.fixture(autouse=True)
def _seed() -> None:
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared() -> Path:
    """The real datasets (``../shared/datasets``); tests that need them skip where they are absent."""
    if not SHARED.is_dir():
        pytest.skip(f"real datasets not found at {SHARED}")
    return SHARED


def documented_functions(count: int, docstring: str) -> str:
    """Python source of ``count`` small documented functions (``{i}`` in ``docstring`` is the function's number)."""
    return "\n".join(f'''
def function_{i}(items, limit):
    """{docstring.format(i=i)}"""
    kept = []
    for item in items:
        if item < limit:
            kept.append(item + {i})
    return kept
''' for i in range(count))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture
def tiny_jsonl_task(tmp_path: Path) -> Path:
    """A small binary task whose label is readable from the code (balanced, 96 examples)."""
    rows = []
    for i in range(96):
        label = i % 2
        body = f"strcpy(buf, input_{i});" if label else f"strncpy(buf, input_{i}, sizeof(buf) - 1);"
        rows.append({"func": f"void handler_{i}(char *input_{i}) {{ char buf[16]; {body} }}", "target": label,
                     "idx": i})
    return write_jsonl(tmp_path / "tiny.jsonl", rows)
