"""A claim on one run of a study, so that two study processes (shards on machines sharing the study folder,
or the same command started twice) never train the same run at once.

The claim is a file beside the run directory, created atomically (``O_EXCL``), naming its holder (host,
process, time) and kept fresh by a heartbeat while the run trains. A holder that died without releasing it
does not hold it forever: on its own host a dead process is seen at once; from another host, a claim whose
heartbeat is older than ``stale_after_s`` is taken over.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

HEARTBEAT_S = 30.0
"""How often a holder refreshes its claim."""

STALE_AFTER_S = 600.0
"""A claim from another host whose heartbeat is older than this belongs to a process that is gone."""


def claim_path(run_dir: Path) -> Path:
    """Beside the run directory, not in it: ``train --overwrite`` replaces the directory."""
    return run_dir.parent / f"{run_dir.name}.claim"


@dataclass
class Claim:
    """A held claim: refreshes itself while open, removes its file on close."""

    path: Path
    heartbeat_s: float = HEARTBEAT_S
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)

    def __enter__(self) -> Claim:
        self._thread = threading.Thread(target=self._beat, name=f"claim {self.path.name}", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.release()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.path.unlink(missing_ok=True)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                os.utime(self.path)
            except OSError:  # removed by hand, or the share is away for a moment: the next beat tries again
                pass


def try_claim(run_dir: Path, stale_after_s: float = STALE_AFTER_S, heartbeat_s: float = HEARTBEAT_S) -> Claim | None:
    """The claim on ``run_dir`` if no live process holds it (taking over one whose holder is gone), else None."""
    path = claim_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(3):  # a takeover races at most with other takeovers
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            judged = holder(path)
            if holder_alive(path, stale_after_s):
                return None
            _remove_stale(path, judged)
            continue
        with os.fdopen(descriptor, "w") as handle:
            json.dump({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}, handle)
        return Claim(path, heartbeat_s)
    return None


def holder(path: Path) -> dict[str, Any]:
    """Who holds the claim at ``path`` ({} when the file is gone or torn)."""
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return {}


def holder_alive(path: Path, stale_after_s: float = STALE_AFTER_S) -> bool:
    """Whether the claim at ``path`` still belongs to a live process."""
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return False
    owner = holder(path)
    if owner.get("host") == socket.gethostname() and isinstance(owner.get("pid"), int):
        return _process_alive(owner["pid"])
    return age < stale_after_s  # another host (or a file still being written): trust a fresh heartbeat


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def _remove_stale(path: Path, judged: dict[str, Any]) -> None:
    """Move the stale claim aside before deleting it: of several processes taking it over, one wins the rename.
    Had another one already replaced it with its own fresh claim (not the ``judged`` one), that is put back."""
    aside = path.with_name(f"{path.name}.stale-{uuid.uuid4().hex}")
    try:
        path.rename(aside)
    except FileNotFoundError:
        return
    if holder(aside) != judged:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)
