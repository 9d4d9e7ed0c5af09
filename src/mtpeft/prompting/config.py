"""The prompt config: which causal LM, which tasks (the same entries as a run config), and how to ask."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mtpeft.config import (
    DEFAULT_SEED,
    RUNS_DIR,
    Baselines,
    RunConfig,
    TaskConfig,
    TrainConfig,
    load_yaml_model,
    unique_task_names,
)


class PromptConfig(BaseModel):
    """``mtpeft prompt``: zero- or few-shot prompting of a causal LM, scored like every other run."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(description="Run name; the run directory defaults to runs/<name>.")
    model: str = Field("smollm2-135m", description="Causal LM: zoo name (see `mtpeft models`), HF id or local path.")
    tasks: list[TaskConfig] = Field(min_length=1, description="Tasks, exactly as in a run config (same data, "
                                    "splits and caps).")
    seed: int = Field(DEFAULT_SEED, description="Seed of the data splits (use the fine-tuned runs' train.seed to "
                      "get their test set) and of random demonstrations.")
    split: Literal["validation", "test"] = Field(
        "test", description="Split that is prompted and scored (training examples are the demonstrations).")
    mode: Literal["generate", "score"] = Field(
        "generate", description="generate: greedy answer, parsed by parse_rule; score: compare the next-token "
        "probabilities of yes and no after the prompt (no generation). Code search always re-ranks by score.")
    parse_rule: Literal["paper", "first_word"] = Field(
        "paper", description="paper: an answer containing 'no'/'not' is negative, else positive; first_word: "
        "the first word must be yes or no, anything else is unparseable and counts as negative.")
    shots: int = Field(0, ge=0, description="Demonstrations per prompt from the training split (0 = zero-shot).")
    demonstrations: Literal["bm25", "random"] = Field(
        "bm25", description="bm25: the training examples lexically closest to the input; random: seeded sample.")
    balanced: bool = Field(True, description="Take as many positive as negative demonstrations (code search: "
                           "always alternates a matching and a non-matching pair).")
    templates: dict[str, str] = Field(
        default_factory=dict, description="Per task, a prompt template file replacing the packaged one "
        "(placeholders {text} and, for pair and retrieval tasks, {text_pair}).")
    max_length: int = Field(1024, ge=16, description="Token budget of one prompt (template, demonstrations and "
                            "input); demonstrations are dropped and code truncated to stay within it.")
    max_code_tokens: int = Field(512, ge=1, description="Tokens kept of each code snippet (and query) before the "
                                 "prompt is assembled.")
    max_new_tokens: int = Field(10, ge=1, description="Tokens generated per answer (mode generate).")
    batch_size: int = Field(8, ge=1, description="Prompts per forward pass (left-padded).")
    rerank_top: int = Field(5, ge=1, description="Code search: candidates of each query re-ranked by the LLM after "
                            "embedding retrieval; the rest keep their embedding order below them.")
    baselines: Baselines = ["trivial", "lexical"]
    output_dir: str | None = Field(None, description="Run directory (default runs/<name>).")
    base_dir: str | None = Field(None, description="Folder that relative paths start from; set to the config "
                                 "file's folder on load.")

    @field_validator("tasks")
    @classmethod
    def _unique_task_names(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        return unique_task_names(tasks)

    @model_validator(mode="after")
    def _templates_name_tasks(self) -> PromptConfig:
        unknown = sorted(set(self.templates) - {t.name for t in self.tasks})
        if unknown:
            raise ValueError(f"`templates` names tasks that are not in `tasks`: {', '.join(unknown)}")
        return self

    @property
    def method(self) -> str:
        """The run's method as reports show it, e.g. ``prompt-0shot`` or ``prompt-4shot-score``."""
        return f"prompt-{self.shots}shot" + ("-score" if self.mode == "score" else "")

    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else RUNS_DIR / self.name

    def data_config(self) -> RunConfig:
        """The run config ``load_task`` reads tasks with: same entries, seed and base folder, so the
        examples (and test hashes) are those of a fine-tuned run with this seed."""
        return RunConfig(name=self.name, model=self.model, tasks=self.tasks, train=TrainConfig(seed=self.seed),
                         base_dir=self.base_dir)

    def template_path(self, task: str) -> Path | None:
        path = self.templates.get(task)
        return None if path is None else self.data_config().resolve_path(path)


def load_prompt_config(path: str | Path, overrides: list[str] | None = None) -> PromptConfig:
    """Read a prompt config from YAML with ``key=value`` overrides (every problem reported at once)."""
    return load_yaml_model(path, PromptConfig, overrides)
