"""Assemble what a run trains: tasks and their tokens, the backbone, the method and the heads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mtpeft.config import SPLITS, RunConfig
from mtpeft.data.encode import EncodedSplit, encode_examples
from mtpeft.methods import Method, create_method
from mtpeft.models.backbone import Backbone, load_backbone
from mtpeft.models.multitask import MultiTaskModel
from mtpeft.tasks import TaskData, load_task, resolve_spec
from mtpeft.train.weighting import WEIGHTINGS, LossWeighting


@dataclass
class Assembled:
    """A run's moving parts, before any training."""

    tasks: dict[str, TaskData]
    encoded: dict[str, dict[str, EncodedSplit]]  # task -> split -> tokens
    backbone: Backbone
    method: Method
    model: MultiTaskModel
    weighting: LossWeighting

    @property
    def pad_id(self) -> int:
        return int(self.backbone.tokenizer.pad_token_id)


def load_tasks(config: RunConfig, with_data: bool = True) -> dict[str, TaskData]:
    """The config's tasks; ``with_data=False`` gives their specs with empty splits, without reading any data
    (what serving a finished run needs, where its training data may be absent)."""
    if not with_data:
        return {t.name: TaskData(resolve_spec(t), {split: [] for split in SPLITS}, t.source or "", t.path)
                for t in config.tasks}
    return {t.name: load_task(t, config) for t in config.tasks}


def encode_tasks(tasks: dict[str, TaskData], tokenizer: Any, max_length: int) -> dict[str, dict[str, EncodedSplit]]:
    return {name: {split: encode_examples(data.splits[split], data.spec.kind, tokenizer, max_length)
                   for split in SPLITS} for name, data in tasks.items()}


def assemble(config: RunConfig, tasks: dict[str, TaskData] | None = None, adapter_dir: Any = None) -> Assembled:
    """Build the model for ``config``; with ``adapter_dir``, load the method's saved weights instead of
    initialising them. Initialisation is seeded, so the same config builds the same model."""
    method = create_method(config.method, config.method_args)  # validate arguments before loading anything
    tasks = tasks if tasks is not None else load_tasks(config)
    backbone = load_backbone(config.model)
    torch.manual_seed(config.train.seed)
    encoder = method.load(backbone, adapter_dir) if adapter_dir is not None else method.inject(backbone)
    pooling = config.pooling or "mean"
    kinds = {name: data.spec.kind for name, data in tasks.items()}
    model = MultiTaskModel(encoder, kinds, backbone.hidden_size, pooling, config.head_dropout, method.virtual_tokens)
    weighting = WEIGHTINGS.get(config.loss_weighting)(list(kinds))
    encoded = encode_tasks(tasks, backbone.tokenizer, config.train.max_length)
    return Assembled(tasks, encoded, backbone, method, model, weighting)
