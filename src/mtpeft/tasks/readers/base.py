"""The source registry and the small parsing helpers every reader shares.

A *source* turns a path into examples. Readers read a dataset in its original format; builders make
a dataset from source code. Each returns ``{"train": [...], "validation": [...], "test": [...]}``
when the data ships a split, or ``{"all": [...]}`` to be split here (seeded, group-aware).
Every parsing error names the file, the line (or row) and the field.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from mtpeft.errors import DataError
from mtpeft.io import json_line
from mtpeft.registry import Registry
from mtpeft.tasks.spec import Example, TaskKind

SourceData = dict[str, list[Example]]
ALL = "all"
SPLIT_ALIASES = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation",
                 "test": "test"}
"""The names datasets give their splits, and the split each one is here."""


@dataclass(frozen=True)
class Source:
    """A registered reader or builder."""

    name: str
    role: Literal["reader", "builder"]
    kinds: tuple[TaskKind, ...]
    read: Callable[..., SourceData]
    description: str
    needs_path: bool = True


SOURCES: Registry[Source] = Registry("source")


def register_source(
    name: str,
    role: Literal["reader", "builder"],
    kinds: tuple[TaskKind, ...],
    description: str,
    needs_path: bool = True,
) -> Callable[[Callable[..., SourceData]], Callable[..., SourceData]]:
    def decorate(fn: Callable[..., SourceData]) -> Callable[..., SourceData]:
        SOURCES.add(name, Source(name, role, kinds, fn, description, needs_path))
        return fn

    return decorate


def require_dir(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such folder (expected {what})")
    if not path.is_dir():
        raise DataError(f"{path}: expected a folder ({what}), found a file")
    return path


def require_file(path: Path, what: str) -> Path:
    if not path.exists():
        raise DataError(f"{path}: no such file (expected {what})")
    if not path.is_file():
        raise DataError(f"{path}: expected a file ({what}), found a folder")
    return path


JSONL_SUFFIXES = (".jsonl", ".jsonl.gz")


def jsonl_files(folder: Path) -> list[Path]:
    """Every ``.jsonl`` and ``.jsonl.gz`` file of a folder, sorted."""
    return sorted(f for suffix in JSONL_SUFFIXES for f in folder.glob(f"*{suffix}"))


def split_files(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    """The published split files of a folder (``train``, ``valid``/``validation``/``dev``, ``test`` + a suffix)."""
    found: dict[str, Path] = {}
    for stem, split in SPLIT_ALIASES.items():
        for suffix in suffixes:
            candidate = folder / f"{stem}{suffix}"
            if candidate.is_file():
                if split in found:
                    raise DataError(f"{folder}: both {found[split].name} and {candidate.name} hold the {split} split; "
                                    "keep one")
                found[split] = candidate
    return found


def parse_split(value: Any, path: Path, line: int, name: str) -> str:
    """A split name (any alias in ``SPLIT_ALIASES``, any case) from a record's field."""
    raw = str(value).strip().lower()
    if raw not in SPLIT_ALIASES:
        raise DataError(f"{path}:{line}: field {name!r} is {raw!r}; expected one of {', '.join(SPLIT_ALIASES)}")
    return SPLIT_ALIASES[raw]


def iter_csv(path: Path, required: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, row)`` for each record; ``line`` is where the record starts (1-based)."""
    csv.field_size_limit(sys.maxsize)
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path}: empty file (expected a CSV header with {', '.join(required)})") from None
        missing = [c for c in required if c not in header]
        if missing:
            raise DataError(
                f"{path}:1: missing column(s) {', '.join(missing)}; header has: {', '.join(h for h in header if h)}"
            )
        start = reader.line_num + 1
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as err:
                raise DataError(f"{path}:{start}: malformed CSV record: {err}") from None
            if values:
                if len(values) != len(header):
                    raise DataError(
                        f"{path}:{start}: row has {len(values)} fields, the header has {len(header)}"
                    )
                yield start, dict(zip(header, values, strict=True))
            start = reader.line_num + 1


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line, object)`` for each non-blank line of a JSON-lines file (``.gz`` allowed)."""
    opener: Callable[..., Any] = open
    if path.suffix == ".gz":
        import gzip

        opener = gzip.open
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                obj = json_line(text)
            except ValueError as err:
                raise DataError(f"{path}:{number}: {err}") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj


def field(obj: dict[str, Any], name: str, path: Path, line: int, kind: type = str) -> Any:
    """``obj[name]``, checked to exist and to be of ``kind``; errors name file, line and field."""
    if name not in obj:
        have = ", ".join(sorted(obj)) or "none"
        raise DataError(f"{path}:{line}: missing field {name!r} (fields present: {have})")
    value = obj[name]
    if kind is str and not isinstance(value, str):
        raise DataError(f"{path}:{line}: field {name!r} is {type(value).__name__}; expected a string")
    return value


def parse_label(value: Any, path: Path, line: int, name: str) -> int:
    """A 0/1 label from ``0``, ``1``, ``"0"``, ``"1"``, ``true``/``false``."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):
        return value
    if isinstance(value, str) and value.strip() in ("0", "1"):
        return int(value.strip())
    if isinstance(value, float) and value in (0.0, 1.0):
        return int(value)
    raise DataError(f"{path}:{line}: field {name!r} is {value!r}; expected 0 or 1")
