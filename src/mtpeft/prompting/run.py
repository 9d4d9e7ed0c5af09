"""``mtpeft prompt``: prompt a causal LM on a config's tasks and write a run directory like a training run's.

    1) tasks and templates are resolved (a bad template fails before anything loads)
    2) the model is loaded; the token budget is checked against its context
    3) data is read exactly as a training run with the same seed reads it (same splits, caps, test hashes)
    4) each task is prompted: classification (generate or score), two-stage code search, or generation
    5) metrics.json (the shared metrics and baselines plus prompting diagnostics), predictions, ledger.json, and
       run.json last: the directory appears whole, or not at all
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from mtpeft.baselines import lexical_baselines
from mtpeft.config import dump_config
from mtpeft.errors import ConfigError
from mtpeft.evaluate.outputs import DEFAULT_THRESHOLD
from mtpeft.io import atomic_dir, write_jsonl, write_text
from mtpeft.prompting.classify import prompt_classification
from mtpeft.prompting.config import PromptConfig
from mtpeft.prompting.generate import prompt_generation
from mtpeft.prompting.lm import CausalLM
from mtpeft.prompting.record import prompt_ledger
from mtpeft.prompting.search import prompt_search
from mtpeft.prompting.templates import load_template
from mtpeft.run.directory import check_replaceable
from mtpeft.run.evaluation import lexical_rows, summarise
from mtpeft.run.files import RunFiles
from mtpeft.run.schema import PROMPTING, write_record
from mtpeft.tasks import TaskKind, load_task, resolve_spec


def run_prompting(config: PromptConfig, overwrite: bool = False, progress: bool = True) -> Path:
    """Prompt every task of ``config`` and write its run directory; return the directory."""
    run_dir = config.run_dir()
    if run_dir.exists() and any(run_dir.iterdir()):
        if not overwrite:
            raise ConfigError(f"{run_dir}: run directory already exists; pass --overwrite to replace it "
                              "(output_dir=... writes elsewhere)")
        check_replaceable(run_dir)  # replaced only at the end, once every answer is written (atomic_dir)
    start = time.perf_counter()
    torch.manual_seed(config.seed)

    # 1) tasks and templates
    specs = {t.name: resolve_spec(t) for t in config.tasks}
    templates = {name: load_template(spec, config.template_path(name)) for name, spec in specs.items()}

    # 2) model
    lm = CausalLM(config.model, progress=progress)
    lm.check_budget(config.max_length, config.max_new_tokens)

    # 3) data
    data_config = config.data_config()
    tasks = {t.name: load_task(t, data_config) for t in config.tasks}

    # 4) prompt every task
    results = {}
    for name in sorted(tasks):
        prompt_task = {TaskKind.RETRIEVAL: prompt_search, TaskKind.GENERATION: prompt_generation}.get(
            specs[name].kind, prompt_classification)
        results[name] = prompt_task(lm, tasks[name], config, templates[name])

    # 5) write the run directory, with the lexical baselines fitted on the same training examples
    thresholds = {name: DEFAULT_THRESHOLD for name, spec in specs.items() if spec.is_classification}
    lexical = lexical_baselines(tasks, [config.split]) if "lexical" in config.baselines else {}
    metrics = summarise(specs, {config.split: {n: r.output for n, r in results.items()}}, thresholds, lexical=lexical,
                        trivial="trivial" in config.baselines)
    for name, result in results.items():
        metrics.tasks[name].scores(config.split).update(result.extra)
    ledger = prompt_ledger(config, lm, tasks, templates, time.perf_counter() - start,
                           {name: result.fit_time_s for name, result in lexical.items()})
    with atomic_dir(run_dir) as staging:
        files = RunFiles(staging)
        write_text(files.config, dump_config(config))
        for name, result in results.items():
            write_jsonl(files.predictions(name, config.split), result.rows)
        for (name, split), rows in lexical_rows(lexical).items():
            write_jsonl(files.predictions(name, split), rows)
        write_record(files.metrics, metrics)
        write_record(files.ledger, ledger)
        files.pack_predictions()  # a prompt run is evidence only: what results/ commits (.jsonl is ignored there)
        files.mark("complete", kind=PROMPTING)
    return run_dir
