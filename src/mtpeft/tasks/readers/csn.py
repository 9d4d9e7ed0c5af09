"""CodeSearchNet JSON lines (``repo, path, func_name, code, docstring, docstring_tokens, ...``).

The query is the docstring (its first sentence when ``first_sentence``), the candidate is the
code with the docstring removed, so the answer is never written inside the candidate. As a
generation task (CodeXGLUE code-to-text) the same pair runs the other way: code -> docstring sentence.
"""

from __future__ import annotations

import re
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
    register_source,
    split_files,
)
from mtpeft.tasks.spec import Example, TaskKind


@register_source(
    "csn", "reader", (TaskKind.RETRIEVAL, TaskKind.GENERATION),
    "CodeSearchNet jsonl(.gz): a file, or a folder with train/valid/test.jsonl; docstring -> code "
    "(generation: code -> docstring sentence).",
)
def read_csn(path: Path, first_sentence: bool = True, kind: TaskKind = TaskKind.RETRIEVAL) -> SourceData:
    if path.is_dir():
        files = split_files(path, JSONL_SUFFIXES)
        if set(files) == {"train", "validation", "test"}:
            return {s: _read(f, first_sentence, kind) for s, f in files.items()}
        jsonl = jsonl_files(path)
        if not jsonl:
            raise DataError(f"{path}: no .jsonl files (expected CodeSearchNet train/valid/test.jsonl)")
        return {ALL: [ex for f in jsonl for ex in _read(f, first_sentence, kind)]}
    if not path.is_file():
        raise DataError(f"{path}: no such file or folder (expected CodeSearchNet jsonl)")
    return {ALL: _read(path, first_sentence, kind)}


def _read(path: Path, first_sentence: bool, kind: TaskKind) -> list[Example]:
    examples = []
    for line, obj in iter_jsonl(path):
        code = field(obj, "code", path, line)
        if "docstring" in obj:
            doc = field(obj, "docstring", path, line)
        else:
            tokens = field(obj, "docstring_tokens", path, line, kind=list)
            doc = " ".join(str(t) for t in tokens)
        query = first_docstring_sentence(doc) if first_sentence else " ".join(doc.split())
        if not query:
            raise DataError(f"{path}:{line}: field 'docstring' is empty; expected the function's description")
        code = strip_docstring_text(code, doc)
        ident = f"{obj.get('path', path.name)}:{obj.get('func_name', line)}:{line}"
        meta = {"file": str(path), "line": line, "url": obj.get("url", ""), "func_name": obj.get("func_name", "")}
        examples.append(query_code_example(ident, query, code, obj.get("repo") or None, meta, kind))
    return examples


def query_code_example(ident: str, query: str, code: str, group: str | None, meta: dict[str, Any],
                       kind: TaskKind) -> Example:
    """A (description, code) pair as its kind reads it: query vs code (retrieval), code -> description (generation)."""
    if kind == TaskKind.GENERATION:
        return Example(ident, code, group=group, meta=meta, target=query)
    return Example(ident, query, code, None, group, meta)


def first_docstring_sentence(docstring: str) -> str:
    """The first paragraph's first sentence, whitespace-normalised (as CodeSearchNet queries)."""
    paragraph = docstring.strip().split("\n\n")[0]
    text = " ".join(paragraph.split())
    match = re.search(r"(?<=[.!?])\s", text)
    return text[: match.start()].strip() if match else text


def strip_docstring_text(code: str, docstring: str) -> str:
    """Remove a docstring literal (with its quotes) from the code when it is there verbatim."""
    if not docstring.strip():
        return code
    for quote in ('"""', "'''", '"', "'"):
        for literal in (f"{quote}{docstring}{quote}", f"r{quote}{docstring}{quote}"):
            if literal in code:
                before, _, after = code.partition(literal)
                return (before.rstrip() + "\n" + after.lstrip("\n")).rstrip() if after.strip() else before.rstrip()
    return code
