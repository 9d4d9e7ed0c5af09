"""BigCloneBench clone pairs in two layouts.

- ``bcb-csv``: ``FUNCTION_ONE,FUNCTION_TWO,LABEL`` CSV files (a file, or a folder searched
  recursively; the file name is the clone type, e.g. ``T1``, ``MT3``, ``WT3_4``).
- ``bcb-codexglue``: CodeXGLUE's ``data.jsonl`` (``{func, idx}``) plus ``train.txt``/``valid.txt``/
  ``test.txt`` pair files with ``idx1 idx2 label`` per line.
"""

from __future__ import annotations

from pathlib import Path

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import (
    ALL,
    SourceData,
    field,
    iter_csv,
    iter_jsonl,
    parse_label,
    register_source,
    require_file,
)
from mtpeft.tasks.spec import Example, TaskKind

_COLUMNS = ("FUNCTION_ONE", "FUNCTION_TWO", "LABEL")
_SPLIT_FILES = {"train": "train.txt", "validation": "valid.txt", "test": "test.txt"}


@register_source(
    "bcb-csv", "reader", (TaskKind.PAIR,),
    "BigCloneBench FUNCTION_ONE,FUNCTION_TWO,LABEL CSVs (file or folder; file name = clone type).",
)
def read_bcb_csv(path: Path) -> SourceData:
    files = sorted(path.rglob("*.csv")) if path.is_dir() else [require_file(path, "a BigCloneBench CSV")]
    if not files:
        raise DataError(f"{path}: no *.csv files (expected BigCloneBench CSVs with {', '.join(_COLUMNS)})")
    examples: list[Example] = []
    seen: set[tuple[str, str, int]] = set()
    for file in files:
        for line, row in iter_csv(file, _COLUMNS):
            label = parse_label(row["LABEL"], file, line, "LABEL")
            first, second = row["FUNCTION_ONE"], row["FUNCTION_TWO"]
            for name, code in (("FUNCTION_ONE", first), ("FUNCTION_TWO", second)):
                if not code.strip():
                    raise DataError(f"{file}:{line}: field {name!r} is empty; expected a Java function")
            key = (first, second, label)
            if key in seen:  # the published files repeat some pairs verbatim
                continue
            seen.add(key)
            rel = file.relative_to(path) if path.is_dir() else Path(file.name)
            meta = {"file": str(file), "line": line, "clone_type": file.stem}
            examples.append(Example(f"{rel.with_suffix('')}:{line}", first, second, label, None, meta))
    return {ALL: examples}


@register_source(
    "bcb-codexglue", "reader", (TaskKind.PAIR,),
    "CodeXGLUE BigCloneBench: data.jsonl {func, idx} + train/valid/test.txt 'idx1 idx2 label' pair files.",
)
def read_bcb_codexglue(path: Path) -> SourceData:
    data_file = require_file(path / "data.jsonl", "CodeXGLUE BigCloneBench data.jsonl with {func, idx}")
    functions: dict[str, str] = {}
    for line, obj in iter_jsonl(data_file):
        functions[str(field(obj, "idx", data_file, line, kind=object))] = field(obj, "func", data_file, line)
    present = {s: path / f for s, f in _SPLIT_FILES.items() if (path / f).is_file()}
    if not present:
        raise DataError(f"{path}: no pair files; expected train.txt, valid.txt and/or test.txt with 'idx1 idx2 label'")
    out: SourceData = {}
    for split, pair_file in present.items():
        out[split] = []
        for line, text in enumerate(pair_file.read_text(encoding="utf-8").splitlines(), start=1):
            parts = text.split()
            if not parts:
                continue
            if len(parts) != 3:
                raise DataError(f"{pair_file}:{line}: expected 'idx1 idx2 label', got {text.strip()!r}")
            for idx in parts[:2]:
                if idx not in functions:
                    raise DataError(f"{pair_file}:{line}: idx {idx!r} is not in {data_file.name}")
            label = parse_label(parts[2], pair_file, line, "label")
            meta = {"file": str(pair_file), "line": line, "idx1": parts[0], "idx2": parts[1]}
            out[split].append(
                Example(f"{split}:{parts[0]}-{parts[1]}", functions[parts[0]], functions[parts[1]], label, None, meta)
            )
    if len(present) < len(_SPLIT_FILES):  # only some splits shipped: split the union here
        return {ALL: [ex for split in out.values() for ex in split]}
    return out
