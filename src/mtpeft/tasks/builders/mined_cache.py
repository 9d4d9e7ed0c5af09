"""An on-disk cache of mined functions, so that every run does not parse the standard library again.

Mining parses and unparses ~600 files (15-30 s on 2 cores); every ``mtpeft train`` of a stdlib task, and
every run of a study, paid it. The cache key covers everything the result depends on: the mining code
itself, the Python version (``ast.unparse`` differs between versions), the mined root, the filters, and the
path, size and modification time of every source file, so a changed file or a new mtpeft is a new entry.

The folder is ``$MTPEFT_CACHE_DIR``, else ``$XDG_CACHE_HOME/mtpeft``, else ``~/.cache/mtpeft``;
``MTPEFT_CACHE_DIR=off`` disables the cache. A cache that cannot be read or written is skipped silently:
it only ever saves time.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from mtpeft.io import atomic_open

T = TypeVar("T")
DISABLED = "off"


def cache_dir() -> Path | None:
    """Where mined functions are kept, or None when the cache is off."""
    chosen = os.environ.get("MTPEFT_CACHE_DIR")
    if chosen == DISABLED:
        return None
    if chosen:
        return Path(chosen)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "mtpeft"


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
    folder = cache_dir()
    path = folder / "mined" / f"{key}.json.gz" if folder else None
    if path is not None and path.is_file():
        try:
            with gzip.open(path, "rt", encoding="utf-8") as f:
                return tuple(kind(**row) for row in json.load(f))
        except (OSError, ValueError, TypeError):  # a damaged or foreign entry: compute it again
            pass
    result = tuple(compute())
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_open(path, "wb") as raw, gzip.open(raw, "wt", encoding="utf-8") as f:
                json.dump([asdict(item) for item in result], f)
        except OSError:  # a read-only home: run without the cache
            pass
    return result

