"""The study config: a base run config and the axes to sweep over it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mtpeft.config import RUNS_DIR, load_yaml_model

Setting = Literal["sft", "pair", "group", "mft"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class StudyAxes(_Strict):
    """What varies between the runs of a study; every combination is one run (SFT: one per task)."""

    setting: list[Setting] = Field(["sft", "mft"], min_length=1, description=(
        "sft = one run per task; pair = one run per pair of tasks; group = one run per entry of `groups`; "
        "mft = one run over all tasks."))
    method: list[str] = Field(["full", "lora"], min_length=1, description="PEFT methods (full = fine-tune all).")
    model: list[str] | None = Field(None, min_length=1, description="Models (default: the base config's).")
    seed: list[int] | None = Field(None, min_length=1, description="Seeds (default: the base config's).")
    train_examples: list[Annotated[int, Field(ge=1)]] | None = Field(
        None, min_length=1, description="Training examples per task (a learning curve): each value caps the "
        "training split of every task, keeping validation and test; smaller caps are subsets of larger ones.")

    @field_validator("setting", "method", "model", "seed", "train_examples")
    @classmethod
    def _unique(cls, values: list | None) -> list | None:
        if values is not None and len(set(values)) != len(values):
            raise ValueError(f"values must be unique, got {values}")
        return values


class StudyConfig(_Strict):
    """``mtpeft study``: run a grid of configs and compare them honestly."""

    name: str = Field(description="Study name; its directory defaults to runs/<name>.")
    base: str = Field(description="The run config every run starts from (relative to this file).")
    tasks: list[str] | None = Field(None, min_length=1, description="Use only these tasks of the base config.")
    axes: StudyAxes = Field(default_factory=StudyAxes)
    groups: list[list[str]] = Field(default_factory=list, description="Task groups of the `group` setting.")
    overrides: list[str] = Field(default_factory=list, description="key=value overrides applied to every run.")
    method_overrides: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra overrides per method, e.g. full: [train.lr=5e-5]."
    )
    model_overrides: dict[str, list[str]] = Field(
        default_factory=dict, description="Extra overrides per model, e.g. microsoft/unixcoder-base: [pooling=pooler]."
    )
    output_dir: str | None = Field(None, description="Study directory (default runs/<name>).")
    keep_checkpoints: bool = Field(False, description="Keep each finished run's resumable checkpoint (optimizer "
                                   "state: 3x the trainable weights; for full fine-tuning, GBs per run).")
    base_dir: str | None = Field(None, description="Folder of the study file (set when it is loaded).")

    def study_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else RUNS_DIR / self.name

    def base_path(self) -> Path:
        base = Path(self.base).expanduser()
        return base if base.is_absolute() or self.base_dir is None else Path(self.base_dir) / base


def load_study(path: str | Path, overrides: list[str] | None = None) -> StudyConfig:
    return load_yaml_model(path, StudyConfig, overrides)
