"""Mine documented Python functions from source files the way CodeSearchNet was built.

Kept: functions with a docstring whose first sentence has at least 3 words and a body of at least
3 lines. Dropped: tests, dunder methods, files that do not parse, and exact duplicates.
Code is normalised with ``ast.unparse`` so comments and formatting never give a label away.
"""

from __future__ import annotations

import ast
import hashlib
import sysconfig
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from mtpeft.errors import DataError
from mtpeft.tasks.builders.mined_cache import cache_key, cached
from mtpeft.tasks.readers import csn

_SKIP_DIRS = {"test", "tests", "idlelib", "site-packages", "lib2to3", "__pycache__", "turtledemo", "ensurepip"}


@dataclass(frozen=True, slots=True)
class MinedFunction:
    """A documented function: where it is, its docstring, and its code without the docstring."""

    path: str  # relative to the mined root
    line: int
    name: str
    docstring: str
    query: str  # first docstring sentence
    code: str  # ast.unparse of the function, docstring removed
    original: str  # ast.unparse of the function with its docstring


def stdlib_root() -> Path:
    """The running interpreter's standard library folder."""
    return Path(sysconfig.get_paths()["stdlib"])


@lru_cache(maxsize=4)
def mine_functions(root: Path, min_lines: int = 3, min_query_words: int = 3) -> tuple[MinedFunction, ...]:
    """Every kept function under ``root`` (a folder or a single ``.py`` file), in a stable order.

    Kept in memory for the process and on disk across processes (:mod:`mtpeft.tasks.builders.mined_cache`).
    """
    if not root.exists():
        raise DataError(f"{root}: no such folder (expected Python source to mine)")
    files = [root] if root.is_file() else sorted(
        p for p in root.rglob("*.py") if not _SKIP_DIRS.intersection(p.relative_to(root).parts[:-1])
    )
    key = cache_key([Path(__file__), Path(csn.__file__)], root, files, min_lines, min_query_words)
    return cached(MinedFunction, key, lambda: _mine(root, files, min_lines, min_query_words))


def _mine(root: Path, files: list[Path], min_lines: int, min_query_words: int) -> list[MinedFunction]:
    seen: set[str] = set()
    mined: list[MinedFunction] = []
    for file in files:
        rel = file.name if root.is_file() else str(file.relative_to(root))
        if Path(rel).name.startswith("test_"):
            continue
        for fn in _functions_in(file, rel, min_lines, min_query_words):
            digest = hashlib.sha1(fn.code.encode()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                mined.append(fn)
    return mined


def _functions_in(file: Path, rel: str, min_lines: int, min_query_words: int) -> list[MinedFunction]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escape sequences in old modules
            tree = ast.parse(file.read_text(encoding="utf-8"), filename=str(file))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        return []
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        name = node.name
        if "test" in name.lower() or (name.startswith("__") and name.endswith("__")):
            continue
        doc = ast.get_docstring(node, clean=True)
        if not doc:
            continue
        query = csn.first_docstring_sentence(doc)
        if len(query.split()) < min_query_words:
            continue
        try:
            original = ast.unparse(node)
            stripped = _without_docstring(node)
        except (ValueError, RecursionError):
            continue
        if stripped is None or len(stripped.splitlines()) - 1 < min_lines:
            continue
        found.append(MinedFunction(rel, node.lineno, name, doc, query, stripped, original))
    return found


def _without_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    body = node.body[1:]
    if not body:
        return None
    clone = type(node)(
        name=node.name, args=node.args, body=body, decorator_list=node.decorator_list,
        returns=node.returns, type_comment=None, type_params=getattr(node, "type_params", []),
    )
    return ast.unparse(ast.fix_missing_locations(clone))
