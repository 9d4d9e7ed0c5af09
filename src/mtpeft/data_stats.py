"""What `mtpeft data` reports: per-split counts, label balance and token lengths; previews; the
CodeSearchNet-style file builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mtpeft.config import RunConfig
from mtpeft.errors import ConfigError
from mtpeft.io import write_jsonl
from mtpeft.tasks import load_task
from mtpeft.tasks.builders import mine_functions, stdlib_root
from mtpeft.tasks.builders.stdlib import csn_records


def task_stats(config: RunConfig, with_tokens: bool = True) -> dict[str, Any]:
    """Per task and split: examples, positives, token-length percentiles of each input as the task reads it (a
    siamese pair's inputs apart), and the share the task cuts (past ``max_length``, or past its windows)."""
    tokenizer = None
    if with_tokens:
        from mtpeft.models.backbone import load_backbone

        tokenizer = load_backbone(config.model).tokenizer
    out: dict[str, Any] = {}
    for task_cfg in config.tasks:
        data = load_task(task_cfg, config)
        splits = data.stats()
        if tokenizer is not None:
            from mtpeft.data.encode import InputFormat, encode_examples
            from mtpeft.run.build import input_format, prompt_format

            fmt = input_format(config, task_cfg.name)
            windowing = fmt.windowing(tokenizer, config.train.max_length)
            kept = config.train.max_length if windowing is None else windowing.coverage  # tokens an input keeps
            for split, examples in data.splits.items():
                # every input whole (as the task reads it: a siamese pair's inputs apart) to see what is cut
                encoded = encode_examples(examples, data.spec.kind, tokenizer, 10**6, prompt_format(config, data.spec),
                                          InputFormat(siamese=fmt.siamese))
                lengths = np.asarray(encoded.longest_inputs())
                content = lengths - (0 if windowing is None else len(windowing.prefix) + len(windowing.suffix))
                splits[split]["tokens"] = {
                    "p50": float(np.percentile(lengths, 50)), "p90": float(np.percentile(lengths, 90)),
                    "p99": float(np.percentile(lengths, 99)),
                    "truncated_share": float(np.mean(content > kept)),
                }
        out[task_cfg.name] = {"source": data.source, "path": data.path, "kind": str(data.spec.kind), "splits": splits}
    return out


def preview(config: RunConfig, task: str, split: str, n: int) -> list[dict[str, Any]]:
    matches = [t for t in config.tasks if t.name == task]
    if not matches:
        raise ConfigError(f"task {task!r} is not in the config; its tasks: {', '.join(t.name for t in config.tasks)}")
    data = load_task(matches[0], config)
    if split not in data.splits:
        raise ConfigError(f"split {split!r}: valid: {', '.join(data.splits)}")
    return [{"id": ex.id, "label": ex.label, "text": ex.text, "text_pair": ex.text_pair}
            for ex in data.splits[split][:n]]


def build_search_file(source: Path | None, out: Path) -> int:
    root = (source or stdlib_root()).resolve()
    records = csn_records(mine_functions(root), repo=root.name)
    write_jsonl(out, records)
    return len(records)
