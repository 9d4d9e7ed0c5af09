"""``ledger.json`` of a prompting run: the same sections as a training run's, read the same way by reports.

Nothing trains and nothing is stored, so trainable parameters, stored bytes, training FLOPs and train
time are 0. ``train_info`` then holds what inference processed: examples, prompts (code search asks
one per re-ranked candidate), prompt and generated tokens, inference FLOPs, time and memory.
"""

from __future__ import annotations

from mtpeft.ledger import (
    ParameterCounts,
    baseline_costs,
    cpu_info,
    git_commit,
    package_versions,
    peak_rss_bytes,
    task_fingerprints,
)
from mtpeft.prompting.config import PromptConfig
from mtpeft.prompting.lm import CausalLM
from mtpeft.prompting.templates import Template
from mtpeft.run.schema import PROMPTING, Ledger
from mtpeft.tasks import TaskData


def prompt_ledger(config: PromptConfig, lm: CausalLM, tasks: dict[str, TaskData], templates: dict[str, Template],
                  wall_time_s: float, lexical_fit_s: dict[str, float]) -> Ledger:
    total, usage = lm.parameters, lm.usage
    examples = {name: len(data.splits[config.split]) for name, data in sorted(tasks.items())}
    return Ledger.model_validate({
        "run_info": {
            "kind": PROMPTING, "name": config.name, "model": config.model, "model_source": lm.source,
            "method": config.method, "setting": PROMPTING, "tasks": sorted(tasks), "seed": config.seed,
            "split": config.split, "mode": config.mode, "shots": config.shots,
            "demonstrations": config.demonstrations if config.shots else None, "balanced": config.balanced,
            "parse_rule": config.parse_rule if config.mode == "generate" else None,
            "templates": {name: t.origin for name, t in sorted(templates.items())},
            "precision": "fp32", "device": str(lm.model.device), "processes": 1,
        },
        "parameters": ParameterCounts(total=total, backbone=total, method_trainable=0, heads=0).as_dict(),
        "storage": {"bytes_total": 0, "bytes_shared_module": 0, "bytes_heads": 0,
                    "note": "prompting stores nothing besides the base model"},
        "train_info": {
            "optimizer_steps": 0,
            "examples": sum(examples.values()),
            "examples_per_task": examples,
            "prompts": usage.prompts,
            "real_tokens": usage.prompt_tokens,
            "padded_tokens": usage.padded_tokens,
            "padding_share": round(1 - usage.prompt_tokens / max(usage.padded_tokens, 1), 4),
            "generated_tokens": usage.generated_tokens,
            "wall_time_s": round(wall_time_s, 2),
            "train_time_s": 0.0,
            "inference_time_s": round(usage.time_s, 2),
            "real_tokens_per_s": round(usage.prompt_tokens / max(usage.time_s, 1e-9), 1),
            "peak_rss_bytes": peak_rss_bytes(),
            "flops": {
                "total": 0,
                "inference_forward": usage.forward_flops,
                "counted": "total = training FLOPs (none). inference_forward: analytic forward FLOPs over padded "
                           "prompt tokens, decoding steps (KV cache) and LM-head positions; see mtpeft.ledger.flops",
            },
            "note": "nothing trains: examples, tokens and time are what inference processed",
        },
        "baselines": baseline_costs(lexical_fit_s),
        "meta_info": {
            "packages": package_versions(),
            "cpu": cpu_info(),
            "git_commit": git_commit(),
            "data": task_fingerprints(tasks),
        },
    })
