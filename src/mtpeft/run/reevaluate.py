"""Re-evaluation (`mtpeft eval`): reload a run from its files and evaluate it, on its own data or on new data."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from mtpeft.baselines import LexicalResult, lexical_baseline
from mtpeft.config import TaskConfig
from mtpeft.data.encode import encode_examples
from mtpeft.errors import ConfigError
from mtpeft.evaluate.runner import run_split
from mtpeft.run.artifacts import load_trained
from mtpeft.run.build import input_format, prompt_format
from mtpeft.run.device import make_accelerator
from mtpeft.run.evaluation import summarise
from mtpeft.run.schema import Metrics
from mtpeft.tasks import load_task
from mtpeft.tasks.readers.base import ALL, SOURCES
from mtpeft.tasks.spec import Example, TaskKind

SPLITS = ("validation", "test", "all")


def evaluate_run(run_dir: Path, task: str | None = None, source: str | None = None, path: str | None = None,
                 split: str = "test", model: Any = None, base_model: str | None = None) -> Metrics:
    """Metrics of a saved run; with ``path``, of ``task`` on that data (``split=all``: every example).

    ``model`` computes in place of the run's PyTorch model (its ONNX export: ``mtpeft.export.OnnxTaskModel``, on
    the CPU), through the same batches; generation tasks still decode with the run's own model. ``base_model``:
    see :func:`~mtpeft.run.artifacts.load_trained`."""
    if split not in SPLITS:
        raise ConfigError(f"--split {split!r}: valid: {', '.join(SPLITS)}")
    if path is not None and task is None:
        raise ConfigError("--path needs --task: which head should score the new data")
    trained = load_trained(Path(run_dir), base_model=base_model)
    built, config = trained.built, trained.config
    if task is not None and task not in built.tasks:
        raise ConfigError(f"--task {task!r}: the run has tasks {', '.join(sorted(built.tasks))}")
    accelerator = make_accelerator(config)
    built.model.to(accelerator.device)
    tasks = [task] if task else sorted(built.tasks)
    outputs: dict[str, dict[str, Any]] = {split: {}}
    lexical: dict[str, LexicalResult] = {}
    for name in tasks:
        data = built.tasks[name]
        if path is None and split != ALL:
            examples, encoded = data.splits[split], built.encoded[name][split]
        else:
            examples = _new_examples(trained, name, source, path, split)
            encoded = encode_examples(examples, data.spec.kind, built.backbone.tokenizer, config.train.max_length,
                                      prompt_format(config, data.spec, built.backbone.seq2seq),
                                      input_format(config, name))
        own = model is None or data.spec.kind is TaskKind.GENERATION
        device, autocast = (accelerator.device, accelerator.autocast) if own else (torch.device("cpu"), nullcontext)
        outputs[split][name] = run_split(built.model if own else model, name, encoded, built.pad_id,
                                         config.train.eval_batch_size, device, autocast,
                                         built.generator(config.train.num_beams))
        if "lexical" in config.baselines:  # refitted on the run's own training split: deterministic, seconds
            lexical[name] = lexical_baseline(data.spec, data.splits["train"], data.splits["validation"],
                                             {split: examples})
    return summarise({t: built.tasks[t].spec for t in tasks}, outputs, trained.thresholds, lexical=lexical,
                     trivial="trivial" in config.baselines)


def _new_examples(trained: Any, task: str, source: str | None, path: str | None, split: str) -> list[Example]:
    """The examples of ``task`` read from ``path`` (or the run's own source, for ``split=all``)."""
    built, config = trained.built, trained.config
    spec = built.tasks[task].spec
    own = next(t for t in config.tasks if t.name == task)
    entry = TaskConfig(name=task, kind=spec.kind, metric=spec.metric, language=spec.language,
                       source=source or own.source or spec.default_source, path=path or own.path,
                       reader_args=own.reader_args if source is None else {})
    if split == ALL:
        src = SOURCES.get(entry.source)  # every example, unsplit and uncapped
        resolved = config.resolve_path(entry.path) if entry.path else None
        return [ex for part in src.read(resolved, **entry.reader_args).values() for ex in part]
    return load_task(entry, config).splits[split]
