"""Assemble what a run trains: tasks and their tokens, the backbone, the method and the heads."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError

from mtpeft.config import SPLITS, RunConfig, TaskConfig
from mtpeft.data.encode import EncodedSplit, GenerationFormat, InputFormat, encode_examples
from mtpeft.errors import ConfigError, MtpeftError, RunError
from mtpeft.methods import Method, check_added_parameters, create_method, methods_where
from mtpeft.models.backbone import Backbone, load_backbone
from mtpeft.models.generation import TextGenerator, attach_adapted_base
from mtpeft.models.multitask import MultiTaskModel, TaskOptions
from mtpeft.models.weighting import WEIGHTINGS, LossWeighting
from mtpeft.tasks import TaskData, load_task, resolve_spec
from mtpeft.tasks.spec import Example, TaskKind, TaskSpec


@dataclass
class Assembled:
    """A run's moving parts, before any training."""

    tasks: dict[str, TaskData]
    encoded: dict[str, dict[str, EncodedSplit]]  # task -> split -> tokens
    backbone: Backbone
    method: Method
    model: MultiTaskModel
    weighting: LossWeighting
    repeats: dict[str, list[float]] = field(default_factory=dict)  # oversampling: per example, times per epoch

    @property
    def pad_id(self) -> int:
        return int(self.backbone.tokenizer.pad_token_id)

    def generator(self, num_beams: int = 1) -> TextGenerator | None:
        """Decoding through the shared module, when the run has generation tasks."""
        if self.backbone.lm is None:
            return None
        return TextGenerator(self.backbone.lm, self.backbone.tokenizer, num_beams, self.backbone.seq2seq)


def load_tasks(config: RunConfig, with_data: bool = True) -> dict[str, TaskData]:
    """The config's tasks; ``with_data=False`` gives their specs with empty splits, without reading any data
    (what serving a finished run needs, where its training data may be absent)."""
    if not with_data:
        return {t.name: TaskData(resolve_spec(t), {split: [] for split in SPLITS}, t.source or "", t.path)
                for t in config.tasks}
    return {t.name: load_task(t, config) for t in config.tasks}


def prompt_format(config: RunConfig, spec: TaskSpec, seq2seq: bool = False) -> GenerationFormat | None:
    """How a generation task's inputs become prompts (None for other kinds)."""
    if spec.kind is not TaskKind.GENERATION:
        return None
    entry = _entry(config, spec.name)
    return GenerationFormat(spec.instruction or f"{spec.name}:", entry.max_target_length, spec.language, seq2seq)


def input_format(config: RunConfig, task: str) -> InputFormat:
    """How ``task``'s inputs become token rows (truncated or windows; joint or siamese pairs)."""
    entry = _entry(config, task)
    return InputFormat(windows=entry.long_inputs == "windows", window_stride=entry.window_stride,
                       max_windows=entry.max_windows if entry.long_inputs == "windows" else 1,
                       siamese=entry.pair_encoding == "siamese")


def task_options(config: RunConfig, data: TaskData) -> TaskOptions:
    """What ``data``'s task sets in the model: window pooling, siamese pairs, its loss; ``pos_weight: auto`` is
    negatives / positives of the training split (None without training data: serving needs no loss)."""
    entry = _entry(config, data.spec.name)
    pos_weight = entry.pos_weight
    if pos_weight == "auto":
        pos_weight = positive_ratio(data.splits["train"])
    return TaskOptions(window_pooling=entry.window_pooling, siamese=entry.pair_encoding == "siamese",
                       pos_weight=pos_weight, focal_gamma=entry.focal_gamma if entry.loss == "focal" else None)


def example_repeats(config: RunConfig, tasks: dict[str, TaskData]) -> dict[str, list[float]]:
    """Per task that oversamples its positives (``oversample_positives``): how many times each training example
    appears per epoch (``auto``: negatives / positives, so batches are balanced on average)."""
    out = {}
    for name, data in tasks.items():
        factor = _entry(config, name).oversample_positives
        if factor == "auto":
            factor = positive_ratio(data.splits["train"])
        if factor:
            out[name] = [float(factor) if ex.label == 1 else 1.0 for ex in data.splits["train"]]
    return out


def positive_ratio(examples: list[Example]) -> float | None:
    """Negatives per positive among ``examples`` (None without both labels)."""
    positives = sum(ex.label == 1 for ex in examples)
    return (len(examples) - positives) / positives if 0 < positives < len(examples) else None


def encode_tasks(tasks: dict[str, TaskData], backbone: Backbone,
                 config: RunConfig) -> dict[str, dict[str, EncodedSplit]]:
    return {name: {split: encode_examples(data.splits[split], data.spec.kind, backbone.tokenizer,
                                          config.train.max_length, prompt_format(config, data.spec, backbone.seq2seq),
                                          input_format(config, name))
                   for split in SPLITS} for name, data in tasks.items()}


@contextmanager
def reading(path: Path, what: str) -> Iterator[None]:
    """Any failure to read a stored file becomes one :class:`RunError` that names the file and what it holds
    (a truncated safetensors, a JSON cut short, weights of another shape), not a library's traceback."""
    try:
        yield
    except MtpeftError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError, SafetensorError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
        raise RunError(f"{path}: {what} cannot be read ({reason}); the file is damaged or comes from another "
                       "run: train again with --overwrite, or copy the run directory whole") from None


def _entry(config: RunConfig, task: str) -> TaskConfig:
    return next(t for t in config.tasks if t.name == task)


def assemble(config: RunConfig, tasks: dict[str, TaskData] | None = None, adapter_dir: Any = None,
             backbone: Backbone | None = None, encoded: dict[str, dict[str, EncodedSplit]] | None = None,
             base: str | None = None) -> Assembled:
    """Build the model for ``config``; with ``adapter_dir``, load the method's saved weights instead of
    initialising them. Initialisation is seeded, so the same config builds the same model.

    ``base`` is loaded in place of ``config.model``: the same weights found elsewhere, for a finished run reopened
    on another machine (:mod:`mtpeft.run.base_model`).

    ``backbone`` and ``encoded`` replace loading ``config.model`` and tokenising the tasks' data: what measuring
    a model of a real size with random weights over synthetic token ids needs (``bench/gpu.py``).
    """
    method = create_method(config.method, config.method_args)  # validate arguments before loading anything
    tasks = tasks if tasks is not None else load_tasks(config)
    kinds = {name: data.spec.kind for name, data in tasks.items()}
    generates = TaskKind.GENERATION in kinds.values()
    if generates and not method.supports_generation:
        raise ConfigError(f"method: {config.method!r} prepends virtual tokens inside peft's own forward, which "
                          "generation does not go through; generation tasks need one of "
                          f"{', '.join(methods_where('supports_generation'))}")
    if backbone is None:
        backbone = load_backbone(base or config.model, language_model=generates,
                                 attention_dropout=config.attention_dropout)
    torch.manual_seed(config.train.seed)
    if adapter_dir is None:
        own = {id(p) for p in backbone.model.parameters()}
        encoder = method.inject(backbone)
        check_added_parameters(method, encoder, own)
    else:
        with reading(adapter_dir, f"the saved {config.method} weights"):
            encoder = method.load(backbone, adapter_dir)
    lm_head = attach_adapted_base(backbone, encoder) if generates else None
    pooling = config.pooling or "mean"
    if pooling == "pooler" and getattr(backbone.model, "pooler", None) is None:
        raise ConfigError(f"pooling: 'pooler' needs a backbone with a pooler (BERT/RoBERTa); {config.model!r} has "
                          "none; use mean, cls or last")
    model = MultiTaskModel(encoder, kinds, backbone.hidden_size, pooling, config.head_dropout, method.virtual_tokens,
                           lm_head, backbone.seq2seq, causal=backbone.is_decoder,
                           options={name: task_options(config, data) for name, data in tasks.items()})
    weighting = WEIGHTINGS.get(config.loss_weighting)(list(kinds))
    encoded = encoded if encoded is not None else encode_tasks(tasks, backbone, config)
    return Assembled(tasks, encoded, backbone, method, model, weighting, example_repeats(config, tasks))
