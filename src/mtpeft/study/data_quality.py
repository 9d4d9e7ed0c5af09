"""Data-quality signals per task that the paper names as factors of transfer: label balance, exact and
near duplicates within and across splits (leakage) and tasks, and label noise (identical inputs
with different labels).

Inputs are compared after collapsing whitespace (pairs: both texts; retrieval: the code). Near
duplicates: Jaccard similarity of word 5-shingles at least ``NEAR`` under MinHash LSH (datasketch).
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from typing import Any

from datasketch import MinHash, MinHashLSH

from mtpeft.tasks.load import TaskData
from mtpeft.tasks.spec import Example, TaskKind

NEAR = 0.8
PERMUTATIONS = 64
SHINGLE = 5


def quality_signals(tasks: dict[str, TaskData]) -> dict[str, Any]:
    """Per task: balance, duplicates, leakage and conflicts; across tasks: shared inputs."""
    keys = {name: {split: [_key(ex, data.spec.kind) for ex in examples] for split, examples in data.splits.items()}
            for name, data in tasks.items()}
    per_task = {name: _task_signals(data, keys[name]) for name, data in tasks.items()}
    every = {name: {k for split in splits.values() for k in split} for name, splits in keys.items()}
    shared = {a: {b: round(len(every[a] & every[b]) / max(len(every[a]), 1), 4) for b in tasks if b != a}
              for a in tasks}
    return {"tasks": per_task, "shared_inputs": shared, "near_threshold": NEAR,
            "definition": f"near duplicate: Jaccard of word {SHINGLE}-shingles >= {NEAR} (MinHash LSH, "
                          f"{PERMUTATIONS} permutations); inputs compared with whitespace collapsed"}


def _task_signals(data: TaskData, keys: dict[str, list[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": str(data.spec.kind)}
    for split, examples in data.splits.items():
        row: dict[str, Any] = {"examples": len(examples),
                               "duplicate_share": _share(len(keys[split]) - len(set(keys[split])), len(examples))}
        if data.spec.kind is not TaskKind.RETRIEVAL:
            row["positive_share"] = _share(sum(ex.label == 1 for ex in examples), len(examples))
        out[split] = row
    train = set(keys.get("train", []))
    index = _train_index(data)
    for split in ("validation", "test"):
        if split in keys and split in out:
            out[split]["exact_in_train_share"] = _share(sum(k in train for k in keys[split]), len(keys[split]))
            out[split]["near_in_train_share"] = _near_share(index, data, split)
    if data.spec.kind is not TaskKind.RETRIEVAL:
        out["label_conflict_share"] = _conflicts(data, keys)
    return out


def _conflicts(data: TaskData, keys: dict[str, list[str]]) -> float:
    """Share of examples whose exact input also appears with the other label (any split)."""
    labels: dict[str, set[int]] = defaultdict(set)
    for split, examples in data.splits.items():
        for key, ex in zip(keys[split], examples, strict=True):
            labels[key].add(int(ex.label))
    total = sum(len(k) for k in keys.values())
    noisy = sum(len(labels[k]) > 1 for split_keys in keys.values() for k in split_keys)
    return _share(noisy, total)


def _train_index(data: TaskData) -> MinHashLSH:
    """An LSH index of the train split's MinHashes, built once and queried by every other split."""
    lsh = MinHashLSH(threshold=NEAR, num_perm=PERMUTATIONS)
    for i, ex in enumerate(data.splits.get("train", [])):
        lsh.insert(str(i), _minhash(_text(ex, data.spec.kind)))
    return lsh


def _near_share(index: MinHashLSH, data: TaskData, split: str) -> float:
    """Share of ``split`` examples with a near duplicate in train."""
    examples = data.splits[split]
    return _share(sum(bool(index.query(_minhash(_text(ex, data.spec.kind)))) for ex in examples), len(examples))


def _minhash(text: str) -> MinHash:
    words = text.split()
    shingles = {" ".join(words[i:i + SHINGLE]) for i in range(max(len(words) - SHINGLE + 1, 1))}
    sketch = MinHash(num_perm=PERMUTATIONS, seed=1)
    sketch.update_batch([s.encode() for s in shingles])
    return sketch


def _text(ex: Example, kind: TaskKind) -> str:
    if kind is TaskKind.RETRIEVAL:
        return _normalise(ex.text_pair or "")
    return _normalise(ex.text + ("\n" + ex.text_pair if ex.text_pair else ""))


def _key(ex: Example, kind: TaskKind) -> str:
    return hashlib.sha1(_text(ex, kind).encode()).hexdigest()


def _normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0
