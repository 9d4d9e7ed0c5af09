"""Any JSON-lines or CSV file, with a mapping from its fields to the example's fields."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import (
    ALL,
    SourceData,
    field,
    iter_csv,
    iter_jsonl,
    parse_label,
    parse_split,
    register_source,
    require_file,
)
from mtpeft.tasks.spec import Example, TaskKind


def _read_mapped(
    path: Path,
    rows: list[tuple[int, dict[str, Any]]],
    text_field: str,
    text_pair_field: str | None,
    label_field: str | None,
    group_field: str | None,
    id_field: str | None,
    split_field: str | None,
) -> SourceData:
    out: SourceData = {}
    for line, obj in rows:
        text = field(obj, text_field, path, line)
        pair = field(obj, text_pair_field, path, line) if text_pair_field else None
        label = parse_label(field(obj, label_field, path, line, kind=object), path, line, label_field) \
            if label_field else None
        group = str(field(obj, group_field, path, line, kind=object)) if group_field else None
        ident = str(field(obj, id_field, path, line, kind=object)) if id_field else f"{path.name}:{line}"
        split = parse_split(field(obj, split_field, path, line, kind=object), path, line, split_field) \
            if split_field else ALL
        out.setdefault(split, []).append(Example(ident, text, pair, label, group, {"file": str(path), "line": line}))
    if not out:
        raise DataError(f"{path}: no records")
    return out


def _mapped_reader(load_rows: Callable[[Path, tuple[str, ...]], list[tuple[int, dict[str, Any]]]]
                   ) -> Callable[..., SourceData]:
    """A reader whose keyword arguments (the field mapping) are what ``reader_args`` accepts."""

    def read(
        path: Path,
        text_field: str = "text",
        text_pair_field: str | None = None,
        label_field: str | None = "label",
        group_field: str | None = None,
        id_field: str | None = None,
        split_field: str | None = None,
    ) -> SourceData:
        required = tuple(f for f in (text_field, text_pair_field, label_field, group_field, id_field, split_field) if f)
        return _read_mapped(path, load_rows(path, required), text_field, text_pair_field, label_field, group_field,
                            id_field, split_field)

    return read


read_jsonl = register_source(
    "jsonl", "reader", (TaskKind.BINARY, TaskKind.PAIR, TaskKind.RETRIEVAL),
    "Any jsonl file; reader_args map fields: text_field, text_pair_field, label_field, group_field, split_field.",
)(_mapped_reader(lambda path, _: list(iter_jsonl(require_file(path, "a JSON-lines file")))))

read_csv = register_source(
    "csv", "reader", (TaskKind.BINARY, TaskKind.PAIR, TaskKind.RETRIEVAL),
    "Any CSV file with a header; reader_args map columns like the jsonl reader.",
)(_mapped_reader(lambda path, required: list(iter_csv(require_file(path, "a CSV file with a header row"), required))))
