"""The base weights a finished run opens on.

A run records its config's ``model``: a zoo name, which every machine with the package resolves, or a folder, which
may not exist where the run was copied to. ``MTPEFT_BASE_MODEL`` points at the base weights there; the run's own
files (adapter, heads, thresholds) are read from the run directory as always.
"""

from __future__ import annotations

import os
from pathlib import Path

from mtpeft.errors import RunError
from mtpeft.models.zoo import ZOO

BASE_MODEL_ENV = "MTPEFT_BASE_MODEL"


def base_model(recorded: str, config_file: Path) -> str:
    """``MTPEFT_BASE_MODEL`` if set, else the recorded model where this machine has it, else a one-line error."""
    chosen = os.environ.get(BASE_MODEL_ENV)
    if chosen:
        if not Path(chosen).expanduser().is_dir() and chosen not in ZOO:
            raise RunError(f"{BASE_MODEL_ENV}={chosen}: no such model folder (or zoo name)")
        return chosen
    if recorded in ZOO or not _is_local_path(recorded) or Path(recorded).expanduser().exists():
        return recorded
    raise RunError(f"{config_file}: model {recorded!r} was trained from a folder this machine does not have; point "
                   f"at the same base weights with {BASE_MODEL_ENV}=PATH")


def _is_local_path(reference: str) -> bool:
    """A folder, not a hub id (``org/name``): absolute, relative to here or home."""
    return reference.startswith(("/", "./", "../", "~")) or Path(reference).is_absolute()
