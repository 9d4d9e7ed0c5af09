"""Devign as packaged by CodeXGLUE defect detection: ``{func, target, idx}`` JSON lines.

Layouts: a single ``.jsonl`` file; a folder with ``train.jsonl``/``valid.jsonl``/``test.jsonl``; or
a folder with one ``.jsonl`` (or the original ``function.json`` array) plus ``train.txt``/
``valid.txt``/``test.txt`` index files naming the ``idx`` of each split.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import ALL, SourceData, field, iter_jsonl, parse_label, register_source
from mtpeft.tasks.spec import Example, TaskKind

SPLIT_FILES = {"train": "train", "validation": "valid", "test": "test"}


@register_source(
    "devign", "reader", (TaskKind.BINARY,),
    "CodeXGLUE defect detection {func, target, idx} jsonl, optional train/valid/test.txt index files.",
)
def read_devign(path: Path) -> SourceData:
    if path.is_file():
        return {ALL: _read_rows(path, _jsonl_rows(path))}
    if not path.is_dir():
        raise DataError(f"{path}: no such file or folder (expected Devign jsonl)")
    split_jsonl = {s: path / f"{stem}.jsonl" for s, stem in SPLIT_FILES.items()}
    if all(p.is_file() for p in split_jsonl.values()):
        return {s: _read_rows(p, _jsonl_rows(p)) for s, p in split_jsonl.items()}
    source = path / "function.json"
    if source.is_file():
        rows = _array_rows(source)
    else:
        candidates = sorted(path.glob("*.jsonl"))
        if len(candidates) != 1:
            raise DataError(
                f"{path}: expected train/valid/test.jsonl, function.json, or exactly one .jsonl file; "
                f"found {[p.name for p in candidates] or 'none'}"
            )
        source = candidates[0]
        rows = _jsonl_rows(source)
    examples = _read_rows(source, rows)
    index_files = {s: path / f"{stem}.txt" for s, stem in SPLIT_FILES.items()}
    if not all(p.is_file() for p in index_files.values()):
        return {ALL: examples}
    by_idx = {ex.meta["idx"]: ex for ex in examples}
    out: SourceData = {}
    for split, index_file in index_files.items():
        out[split] = []
        for line, text in enumerate(index_file.read_text(encoding="utf-8").splitlines(), start=1):
            token = text.strip()
            if not token:
                continue
            if token not in by_idx:
                raise DataError(f"{index_file}:{line}: idx {token!r} is not in {source.name}")
            out[split].append(by_idx[token])
    return out


def _jsonl_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    return list(iter_jsonl(path))


def _array_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DataError(f"{path}:{err.lineno}: not valid JSON ({err.msg})") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a JSON array of {{func, target}} objects")
    # an array has no per-item lines; report the item number instead (1-based)
    return [(i, row) for i, row in enumerate(data, start=1)]


def _read_rows(path: Path, rows: list[tuple[int, dict[str, Any]]]) -> list[Example]:
    examples = []
    for line, obj in rows:
        code = field(obj, "func", path, line)
        label = parse_label(field(obj, "target", path, line, kind=object), path, line, "target")
        idx = str(obj.get("idx", line - 1))
        group = obj.get("commit_id") or None
        meta = {"file": str(path), "line": line, "idx": idx, "project": obj.get("project", "")}
        examples.append(Example(f"{path.stem}:{idx}", code, None, label, group, meta))
    return examples
