"""Atomic file writes (a crash mid-write never leaves a half-written file behind), and reading what a user
gives with bounded work."""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"
"""Every temporary file or folder made here is named ``.<name>.<random>.tmp``, beside ``name``: what
:func:`remove_stale_temps` finds after a kill."""


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` and move it into place only when the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as handle:
        handle.write(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    with atomic_open(path) as handle:
        for row in rows:
            handle.write(json.dumps(row, default=_json_default) + "\n")


def append_jsonl(path: str | Path, row: dict[str, Any]) -> None:
    """Append one line; used for logs, where a torn last line is tolerated by readers."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, default=_json_default) + "\n")


def mtpeft_home() -> Path:
    """Where mtpeft keeps what it builds once (``$MTPEFT_HOME``, default ``~/.cache/mtpeft``): converted and
    generated models, mined functions."""
    return Path(os.environ.get("MTPEFT_HOME", Path.home() / ".cache" / "mtpeft")).expanduser()


def utf8_problem(data: bytes, err: UnicodeDecodeError) -> str:
    """Where ``data`` stops being UTF-8, as a user can find it: ``line N (byte 0xNN)``."""
    line = data.count(b"\n", 0, err.start) + 1
    return f"line {line} is not UTF-8 text (byte {data[err.start]:#04x}); save the file as UTF-8"


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def save_safetensors(path: str | Path, tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> None:
    """Atomic :func:`safetensors.torch.save_file` (contiguous copies, shared storage broken)."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TEMP_SUFFIX)
    os.close(fd)
    try:
        save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__} to JSON")


@contextmanager
def atomic_dir(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=TEMP_SUFFIX))
    try:
        yield staging
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete what atomic writes under ``folder`` left behind when a process was killed mid-write (0-byte
    ``.heads.safetensors.*.tmp``, half-filled staging folders); returns what was removed. Only for a folder
    no other process writes to (a run directory when its run finishes)."""
    removed: list[Path] = []
    for path in sorted(Path(folder).rglob(f".*{TEMP_SUFFIX}")):
        if any(parent in removed for parent in path.parents):
            continue  # inside a staging folder already removed
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


MAX_JSON_DIGITS = 100
"""Digits of one JSON number read from a user's file: no id, label or count needs more, and Python refuses
integers past 4,300 digits with a ValueError that names no line."""


def json_line(text: str) -> Any:
    """One JSON value from a line of a user's file, with bounded work: numbers of at most
    :data:`MAX_JSON_DIGITS` digits, nesting as deep as the parser's recursion allows.

    Raises:
        ValueError: the reason, in one line a caller puts after ``file:line:``.
    """
    try:
        return json.loads(text, parse_int=_bounded_int)
    except json.JSONDecodeError as err:
        raise ValueError(f"not valid JSON ({err.msg} at column {err.colno})") from None
    except RecursionError:
        raise ValueError("JSON nested too deeply to read") from None


def _bounded_int(text: str) -> int:
    digits = len(text.lstrip("-"))
    if digits > MAX_JSON_DIGITS:
        raise ValueError(f"a number of {digits:,} digits; numbers may have at most {MAX_JSON_DIGITS}")
    return int(text)


def not_a_file(path: str | Path) -> str | None:
    """Why ``path`` cannot be read as a file from start to end (``"no such file"``, ``"is a folder"``, ``"is a
    device"``, ...); None for a file or a pipe. Links are followed."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "no such file"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if stat.S_ISREG(mode) or stat.S_ISFIFO(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a folder"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device"
    return "is a socket" if stat.S_ISSOCK(mode) else "is not a regular file"


def same_file(a: str | Path, b: str | Path) -> bool:
    """Whether two paths name one file (symbolic and hard links included); False where either is missing."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
