"""Where a training run writes, and when a run directory may be replaced.

A finished run is replaced only by a run that finished: ``--overwrite`` over a finished run trains in a staging
folder beside it (``.<name>.retrain/``) and swaps it in as the new run's very last step, so a failure at any point
(a bad value, a NaN loss, kill -9, a full disk) leaves the finished run byte for byte as it was; ``--resume`` after
such a failure continues the staging folder. ``--overwrite`` refuses a folder that is not a run of mtpeft (no
``run.json``) and the folders whose loss would hurt most: the current directory and its parents, the home folder,
the filesystem root and the mtpeft checkout itself.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from mtpeft.errors import ConfigError
from mtpeft.run.files import RunFiles

_CHECKOUT = Path(__file__).resolve().parents[3]
"""The source checkout mtpeft runs from (``src/mtpeft/run/`` lies three levels below), when it is one."""


@dataclass(frozen=True)
class RunDirectory:
    """Where a run ends up (``target``, the config's ``output_dir``) and where it is written while it trains."""

    target: Path
    workdir: Path  # the target itself, or the staging folder beside a finished run being trained again

    @property
    def files(self) -> RunFiles:
        return RunFiles(self.workdir)

    @property
    def staged(self) -> bool:
        return self.workdir != self.target

    def claim(self, fresh: bool) -> None:
        """Make the work folder ready, emptied first when ``fresh``; a finished target is never touched here."""
        if fresh and self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)

    def publish(self) -> None:
        """Put a finished staged run in the old one's place (the new run's last step; nothing to do unstaged).

        Two renames: between them both runs are whole on disk, the old one under ``.<name>.replaced``.
        """
        if not self.staged:
            return
        old = self.target.with_name(f".{self.target.name}.replaced")
        shutil.rmtree(old, ignore_errors=True)
        if self.target.exists():
            os.rename(self.target, old)
        os.rename(self.workdir, self.target)
        shutil.rmtree(old, ignore_errors=True)


def staging_dir(target: Path) -> Path:
    return target.with_name(f".{target.name}.retrain")


def plan_run_directory(target: Path, config_yaml: str, resume: bool, overwrite: bool) -> RunDirectory:
    """Say where a run of ``config_yaml`` writes, refusing (before any work, deleting nothing) what would lose or
    mix up a run: an existing directory without --resume/--overwrite, a finished run to resume, a resume with
    another config, and an --overwrite of anything :func:`check_replaceable` refuses."""
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: output_dir is a file, not a directory; choose another output_dir")
    occupied = target.is_dir() and any(target.iterdir())
    if overwrite:
        if not occupied:
            return RunDirectory(target, target)
        check_replaceable(target)
        return RunDirectory(target, staging_dir(target) if RunFiles(target).is_complete() else target)
    staging = staging_dir(target)
    if resume and RunFiles(staging).is_run():  # a retrain over a finished run that stopped before it finished
        _check_same_config(staging, config_yaml)
        return RunDirectory(target, staging)
    if not occupied:
        return RunDirectory(target, target)
    if not resume:
        raise ConfigError(f"{target}: run directory already exists; pass --resume to continue it or "
                          "--overwrite to start again (output_dir=... writes elsewhere)")
    if RunFiles(target).is_complete():
        raise ConfigError(f"{target}: the run is finished, there is nothing to resume; --overwrite trains it again")
    _check_same_config(target, config_yaml)
    return RunDirectory(target, target)


def check_replaceable(target: Path) -> None:
    """Refuse to replace a folder that is not a run of mtpeft, or one whose loss would take much else with it."""
    resolved = target.resolve()
    protected = {Path.cwd().resolve(): "the current directory", Path.home().resolve(): "the home folder",
                 Path(resolved.anchor): "the filesystem root"}
    if (_CHECKOUT / "pyproject.toml").is_file():
        protected[_CHECKOUT] = "the mtpeft checkout"
    where = protected.get(resolved) or next(
        (f"a parent of {what} ({place})" for place, what in protected.items() if resolved in place.parents), None)
    if where:
        raise ConfigError(f"{target}: --overwrite refuses to replace {where}; set output_dir to a run's own "
                          "folder, e.g. output_dir=runs/<name>")
    if not RunFiles(target).is_run():
        raise ConfigError(f"{target}: --overwrite replaces only a run directory, and this one has no "
                          f"{RunFiles(target).status.name}; choose another output_dir, or empty it yourself")


def _check_same_config(run_dir: Path, config_yaml: str) -> None:
    saved = RunFiles(run_dir).config
    if saved.is_file() and saved.read_text(encoding="utf-8") != config_yaml:
        raise ConfigError(f"{run_dir}: the run was started with another config ({saved}); resume with that config "
                          "or start again with --overwrite")
