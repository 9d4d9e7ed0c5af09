"""An on-disk cache of mined functions, so that every run does not parse the standard library again.

Mining parses and unparses ~600 files (15-30 s on 2 cores); every ``mtpeft train`` of a stdlib task, and
every run of a study, paid it. The cache key covers everything the result depends on: the mining code
itself, the Python version (``ast.unparse`` differs between versions), the mined root, the filters, and the
path, size and modification time of every source file, so a changed file or a new mtpeft is a new entry.

Entries live in ``$MTPEFT_HOME/mined`` (default ``~/.cache/mtpeft/mined``) beside the converted models. A
cache that cannot be read or written is skipped silently: it only ever saves time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from mtpeft.io import atomic_open, mtpeft_home

T = TypeVar("T")


def cache_key(code_files: Sequence[Path], root: Path, files: Sequence[Path], *settings: object) -> str:
    """A digest of the mining code, the interpreter, the settings and every source file's identity."""
    digest = hashlib.sha256()
    for code in code_files:
        digest.update(code.read_bytes())
    digest.update(repr((sys.version, str(root), settings)).encode())
    for file in files:
        stat = file.stat()
        digest.update(f"{file}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:32]


def cached(kind: type[T], key: str, compute: Callable[[], Sequence[T]]) -> tuple[T, ...]:
    """``compute()`` as a tuple of dataclass ``kind``, read from the cache when ``key`` is there."""
    path = mtpeft_home() / "mined" / f"{key}.json.gz"
    if path.is_file():
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return tuple(kind(**row) for row in json.load(f))
        except (OSError, ValueError, TypeError):  # a damaged or foreign entry: compute it again
            pass
    result = tuple(compute())
    try:
        with atomic_open(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
            json.dump([asdict(item) for item in result], f)
    except OSError:  # a read-only home: run without the cache
        pass
    return result

