"""Methods2Test (Tufano et al., MSR 2022) JSON lines: a focal method -> the unit test that tests it.

Flat records (``{"focalMethod": ..., "testMethod": ...}``, field names mapped by ``reader_args``) or
records of the original dataset, where ``focal_method`` and ``test_case`` are objects with a ``body``
and ``repository`` says where they come from (grouped by it, as the published split keeps every
repository in one split).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mtpeft.errors import DataError
from mtpeft.tasks.readers.base import (
    ALL,
    JSONL_SUFFIXES,
    SourceData,
    field,
    iter_jsonl,
    jsonl_files,
    parse_split,
    register_source,
    split_files,
)
from mtpeft.tasks.spec import Example, TaskKind

_SOURCE, _TARGET = "focalMethod", "testMethod"
_ORIGINAL = ("focal_method", "test_case")


@register_source(
    "methods2test", "reader", (TaskKind.GENERATION,),
    "Methods2Test jsonl: a file, or a folder with train/valid/test.jsonl; focal method -> test method "
    "(reader_args source_field, target_field, group_field, split_field; the original focal_method/test_case "
    "records too).",
)
def read_methods2test(
    path: Path,
    source_field: str = _SOURCE,
    target_field: str = _TARGET,
    group_field: str | None = None,
    split_field: str | None = None,
) -> SourceData:
    fields = (source_field, target_field, group_field, split_field)
    if path.is_dir():
        files = split_files(path, JSONL_SUFFIXES)
        if files:
            if split_field:
                raise DataError(f"{path}: holds split files ({', '.join(f.name for f in files.values())}); "
                                "split_field is for a single file")
            return {split: _read(file, *fields)[ALL] for split, file in files.items()}
        jsonl = jsonl_files(path)
        if not jsonl:
            raise DataError(f"{path}: no .jsonl files (expected train/valid/test.jsonl of Methods2Test records)")
        out: SourceData = {}
        for file in jsonl:
            for split, examples in _read(file, *fields).items():
                out.setdefault(split, []).extend(examples)
        return out
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder (expected Methods2Test jsonl)")
    return _read(path, *fields)


def _read(path: Path, source_field: str, target_field: str, group_field: str | None,
          split_field: str | None) -> SourceData:
    out: SourceData = {}
    for line, obj in iter_jsonl(path):
        group = None
        if source_field == _SOURCE and target_field == _TARGET and source_field not in obj \
                and all(isinstance(obj.get(k), dict) for k in _ORIGINAL):
            text, target = (_body(obj, key, path, line) for key in _ORIGINAL)
            repository = obj["repository"] if isinstance(obj.get("repository"), dict) else {}
            origin = repository.get("url") or repository.get("repo_id")
            group = str(origin) if origin is not None else None
        else:
            text, target = (_code(obj, name, path, line) for name in (source_field, target_field))
        if group_field:
            group = str(field(obj, group_field, path, line, kind=object))
        split = parse_split(field(obj, split_field, path, line, kind=object), path, line, split_field) \
            if split_field else ALL
        out.setdefault(split, []).append(
            Example(f"{path.name}:{line}", text, group=group, meta={"file": str(path), "line": line}, target=target)
        )
    if not out:
        raise DataError(f"{path}: no records")
    return out


def _code(obj: dict[str, Any], name: str, path: Path, line: int) -> str:
    return _nonempty(field(obj, name, path, line), name, path, line)


def _body(obj: dict[str, Any], key: str, path: Path, line: int) -> str:
    """``obj[key]["body"]`` of an original Methods2Test record; errors name the nested field."""
    body = obj[key].get("body")
    if not isinstance(body, str):
        found = "missing" if body is None else type(body).__name__
        raise DataError(f"{path}:{line}: field '{key}.body' is {found}; expected a string (the method's code)")
    return _nonempty(body, f"{key}.body", path, line)


def _nonempty(code: str, name: str, path: Path, line: int) -> str:
    if not code.strip():
        raise DataError(f"{path}:{line}: field {name!r} is empty; expected a method's code")
    return code
