"""Which base weights a finished run is reopened on, so that a run copied to another machine or user still opens.

A run records its base twice: the config's ``model`` (``config.yaml``; a zoo name means the same weights on any
machine) and the folder that entry resolved to when it trained (``ledger.json``'s ``run_info.model_source``, also
``adapter/adapter_config.json``'s ``base_model_name_or_path`` for plain peft). Reopening takes, in this order:

1. ``--base-model PATH`` (``predict``, ``eval``, ``serve``, ``export``);
2. ``$MTPEFT_BASE_MODEL``;
3. the recorded folder, where it exists here;
4. the run's own ``model/``, where full fine-tuning stored the whole model and its tokenizer;
5. the config's zoo name, resolved on this machine (or its hub id, loaded as training loaded it);

else one error naming the missing folder and both ways to point at the base.
"""

from __future__ import annotations

import os
from pathlib import Path

from mtpeft.errors import ModelError
from mtpeft.models.zoo import ZOO
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import read_ledger

ENV = "MTPEFT_BASE_MODEL"
OPTION = "--base-model"


def resolve_base(run_dir: Path, model: str, given: str | None = None) -> str:
    """The reference to load ``run_dir``'s base from; ``model`` is its config's entry, ``given`` the option's."""
    if given:
        return _checked(given, f"{OPTION} {given}")
    if os.environ.get(ENV):
        return _checked(os.environ[ENV], f"{ENV}={os.environ[ENV]}")
    files = RunFiles(run_dir)
    recorded = read_ledger(files.ledger).run_info.model_source
    if Path(recorded).expanduser().is_dir():
        return recorded
    whole = files.storage("model")
    if (whole / "config.json").is_file():
        return str(whole)  # every weight trained and was saved: the run is its own base
    entry = ZOO.get(model) if model in ZOO else None
    if entry is not None and entry.is_installed():
        return model
    if entry is None and recorded == model and not Path(model).expanduser().is_absolute():
        return model  # a hub id: the HF cache (or hub) has it or says so, as when the run trained
    why = f"zoo model {model!r} is not installed ({entry.install_command})" if entry else "no such folder"
    raise ModelError(f"{recorded}: the base model of {run_dir} is not on this machine ({why}); pass {OPTION} PATH "
                     f"(the base model's folder) or set {ENV}=PATH")


def _checked(reference: str, label: str) -> str:
    """A zoo name, or a model folder (with config.json), as the user gave it."""
    if reference in ZOO or (Path(reference).expanduser() / "config.json").is_file():
        return reference
    raise ModelError(f"{label}: not a model folder (a folder with config.json, or a zoo name: `mtpeft models`)")
