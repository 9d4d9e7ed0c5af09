"""Benchmark: inference of `mtpeft eval` (and `predict`/`serve`, which batch the same way) against a plain
transformers forward loop on the same inputs, in fp32 and (where the CPU has it natively) bf16; the same model
exported to ONNX (`mtpeft export --format onnx`) and run by ONNX Runtime in fp32 and int8 through the same batches
(`--backend onnx`) beside PyTorch fp32 and bf16; and what the long-input options cost per example against truncation.

mtpeft's path is the one evaluation takes (`mtpeft.evaluate.run_split`: length-sorted batches, each padded to its
own longest input, the task head). The baseline is what a user writes with the Transformers docs: the same
backbone with the same LoRA (peft), the inputs in their order, batches padded to their longest, mean pooling.
Both see the same token ids (tokenised once by mtpeft) and the same batch size; real tokens/s counts tokens that
are not padding. The long-input options are measured through mtpeft alone (the baseline has no such thing): real
tokens, analytic forward FLOPs and milliseconds per example for `truncate` against `windows` (vulnerability) and
`joint` against `siamese` with windows (clone).

Usage:
    python bench/inference.py --model minilm --examples 256
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from mtpeft.config import load_config
from mtpeft.data.collate import collate
from mtpeft.evaluate import run_split
from mtpeft.export import OnnxTaskModel
from mtpeft.export.onnx_graph import export_onnx
from mtpeft.io import write_json
from mtpeft.ledger import flop_model
from mtpeft.ledger.ledger import cpu_info
from mtpeft.run.build import assemble
from mtpeft.run.device import resolve_precision

ROOT = Path(__file__).resolve().parents[1]
OPTIONS = {  # task -> {setting: task overrides}
    "vulnerability": {"truncate": {}, "windows x4": {"long_inputs": "windows", "max_windows": 4}},
    "clone": {"joint": {}, "siamese + windows x2": {"pair_encoding": "siamese", "long_inputs": "windows",
                                                     "max_windows": 2}},
}


def build(model: str, task: str, examples: int, max_length: int, options: dict[str, Any]) -> tuple[Any, Any]:
    """The run config and what it assembles: ``task`` alone, ``examples`` test examples."""
    config = load_config(ROOT / "configs" / "paper-tasks.yaml", [f"model={model}", f"train.max_length={max_length}"])
    entry = next(t for t in config.tasks if t.name == task)
    entry = entry.model_copy(update={**options, "max_examples": {"train": 8, "validation": 8, "test": examples}})
    config = config.model_copy(update={"tasks": [entry], "baselines": []})
    return config, assemble(config)


def autocast(precision: str) -> Any:
    return (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if precision == "bf16" else nullcontext


def time_mtpeft(built: Any, task: str, batch_size: int, precision: str, model: Any = None) -> float:
    """Seconds of `mtpeft eval`'s pass over the test split; ``model``: an ONNX export in place of the PyTorch model."""
    split = built.encoded[task]["test"]
    start = time.perf_counter()
    run_split(built.model if model is None else model, task, split, built.pad_id, batch_size, torch.device("cpu"),
              autocast(precision) if model is None else nullcontext)
    return time.perf_counter() - start


def onnx_models(config: Any, built: Any, folder: Path) -> dict[str, OnnxTaskModel]:
    """The model exported as `mtpeft export --format onnx --quantize int8` writes it (untrained: no run to name)."""
    export_onnx(config, built, {}, heads_sha256="untrained", out=folder, quantize="int8")
    return {"onnx fp32": OnnxTaskModel(folder, "fp32"), "onnx int8": OnnxTaskModel(folder, "int8")}


def plain_model(model_dir: Any) -> Any:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    model = AutoModel.from_pretrained(model_dir)
    return get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules=["query", "value"])).eval()


@torch.no_grad()
def time_plain(model: Any, ids: list[list[int]], pad_id: int, batch_size: int, precision: str) -> float:
    """The inputs in their order, each batch padded to its longest, mean-pooled hidden states."""
    start = time.perf_counter()
    for first in range(0, len(ids), batch_size):
        rows = ids[first:first + batch_size]
        width = max(map(len, rows))
        input_ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
        with autocast(precision)():
            hidden = model(input_ids=input_ids, attention_mask=mask).last_hidden_state
        (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    return time.perf_counter() - start


def per_example_cost(built: Any, task: str) -> dict[str, float]:
    """Mean real tokens and analytic forward GFLOP per example (each example alone, so without padding)."""
    split = built.encoded[task]["test"]
    flops = flop_model(built.model.encoding_module(), built.backbone.model.config)
    tokens = cells = 0
    for i in range(len(split)):
        batch = collate(split, [i], built.pad_id)
        tokens += batch.real_tokens
        cells += batch.attention_cells
    return {"real_tokens": tokens / len(split), "gflop": flops.forward(tokens, cells) / len(split) / 1e9,
            "examples": len(split), "total_real_tokens": tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--examples", type=int, default=256, help="test examples per task")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-inference.json")
    args = parser.parse_args()
    precisions = ["fp32"] + (["bf16"] if resolve_precision("auto", torch.device("cpu")) == "bf16" else [])

    # 1) mtpeft against the plain loop, truncated inputs of vulnerability (Devign functions)
    config, built = build(args.model, "vulnerability", args.examples, args.max_length, {})
    split = built.encoded["vulnerability"]["test"]
    ids = [split.ids[i] for i in range(len(split))]
    tokens = sum(map(len, ids))
    plain = plain_model(built.backbone.source)
    against: dict[str, Any] = {}
    for precision in precisions:
        times: dict[str, list[float]] = {"mtpeft": [], "plain": []}
        for _ in range(args.rounds):
            times["mtpeft"].append(time_mtpeft(built, "vulnerability", args.batch_size, precision))
            times["plain"].append(time_plain(plain, ids, built.pad_id, args.batch_size, precision))
        rate = {name: tokens / statistics.median(t) for name, t in times.items()}
        against[precision] = {"seconds": times, "real_tokens_per_s": rate, "ratio": rate["mtpeft"] / rate["plain"]}
        print(f"{precision}: mtpeft {rate['mtpeft']:.0f} real tokens/s, plain transformers {rate['plain']:.0f} "
              f"({against[precision]['ratio']:.2f}x) on {len(ids)} Devign functions, {tokens:,} tokens")

    # 2) ONNX Runtime (fp32, int8) against PyTorch (fp32, and bf16 where native) on the same batches, in turns
    with tempfile.TemporaryDirectory() as folder:
        engines: dict[str, tuple[str, Any]] = {f"torch {p}": (p, None) for p in precisions}
        exported = onnx_models(config, built, Path(folder) / "onnx")
        engines.update({name: ("fp32", model) for name, model in exported.items()})
        seconds: dict[str, list[float]] = {name: [] for name in engines}
        for precision, engine in engines.values():  # the first pass allocates; not counted
            time_mtpeft(built, "vulnerability", args.batch_size, precision, engine)
        for _ in range(args.rounds):
            for name, (precision, engine) in engines.items():
                seconds[name].append(time_mtpeft(built, "vulnerability", args.batch_size, precision, engine))
    onnx = {name: {"seconds": t, "items_per_s": len(ids) / statistics.median(t),
                   "ratio_vs_torch_fp32": statistics.median(seconds["torch fp32"]) / statistics.median(t),
                   "ratio_vs_fastest_torch": min(statistics.median(seconds[f"torch {p}"]) for p in precisions)
                   / statistics.median(t)}
            for name, t in seconds.items()}
    for name, row in onnx.items():
        print(f"{name:10s} {row['items_per_s']:8.1f} items/s ({row['ratio_vs_torch_fp32']:.2f}x PyTorch fp32, "
              f"{row['ratio_vs_fastest_torch']:.2f}x PyTorch {precisions[-1]})")

    # 3) the long-input options against truncation, through mtpeft
    precision = precisions[-1]
    options: dict[str, Any] = {}
    for task, settings in OPTIONS.items():
        for setting, overrides in settings.items():
            _, built = build(args.model, task, args.examples, args.max_length, overrides)
            cost = per_example_cost(built, task)
            seconds = statistics.median(time_mtpeft(built, task, args.batch_size, precision)
                                        for _ in range(args.rounds))
            cost.update(ms_per_example=1000 * seconds / cost["examples"],
                        real_tokens_per_s=cost["total_real_tokens"] / seconds)
            options[f"{task}: {setting}"] = cost
            print(f"{task:13s} {setting:22s} {cost['real_tokens']:7.0f} tokens/example {cost['gflop']:6.2f} "
                  f"GFLOP/example {cost['ms_per_example']:7.1f} ms/example ({cost['real_tokens_per_s']:.0f} real "
                  f"tokens/s, {precision})")
    write_json(args.out, {"model": args.model, "examples": args.examples, "batch_size": args.batch_size,
                          "max_length": args.max_length, "against_plain_transformers": against, "onnx_runtime": onnx,
                          "long_input_options": options, "cpu": cpu_info(), "torch_threads": torch.get_num_threads()})
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
