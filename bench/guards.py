"""Benchmark: what the hostile-input guards cost on ordinary inputs, each against the unguarded call it replaced,
alternating in one process on the same data.

- `predict`'s and the readers' JSON lines: `mtpeft.io.json_line` (numbers of at most 100 digits, nesting errors as
  one line) against `json.loads`, over jsonl lines of real Devign functions.
- Tokenising single inputs: `mtpeft.data.encode.tokenize` (each text first cut to 128 characters per kept token)
  against the tokenizer's own truncation on the same texts.
- Tokenising pairs jointly: the whole pair encoded once and cut here by longest-first (a fast tokenizer's own pair
  truncation can build gigabytes of overflow rows for two long functions) against `truncation="longest_first"`,
  on real BigCloneBench pairs; the ids are checked equal.
- Configs: `mtpeft.config.parse_yaml` (alias expansion bounded to 10,000 nodes) against `yaml.safe_load`.

Usage:
    python bench/guards.py --examples 1000
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mtpeft.config import load_config, parse_yaml
from mtpeft.data.encode import tokenize
from mtpeft.io import json_line, write_json
from mtpeft.ledger.ledger import cpu_info
from mtpeft.models.zoo import resolve_model
from mtpeft.tasks.load import load_task

ROOT = Path(__file__).resolve().parents[1]


def test_examples(task: str, examples: int) -> list[Any]:
    config = load_config(ROOT / "configs" / "paper-tasks.yaml")
    entry = next(t for t in config.tasks if t.name == task)
    entry = entry.model_copy(update={"max_examples": {"train": 8, "validation": 8, "test": examples}})
    return load_task(entry, config).splits["test"]


def seconds(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def compare(name: str, guarded: Callable[[], Any], plain: Callable[[], Any], rounds: int, items: int) -> dict[str, Any]:
    """Median seconds of each, the rounds interleaved so that drift in the machine's speed hits both alike."""
    guarded_times: list[float] = []
    plain_times: list[float] = []
    for _ in range(rounds):
        guarded_times.append(seconds(guarded))
        plain_times.append(seconds(plain))
    g, p = statistics.median(guarded_times), statistics.median(plain_times)
    extra_us = (g - p) / items * 1e6
    row = {"guard": name, "items": items, "guarded_s": g, "plain_s": p, "ratio": g / p, "extra_us_per_item": extra_us}
    print(f"{name:<32} {items:>5} items  guarded {g * 1e3:8.2f} ms  plain {p * 1e3:8.2f} ms  ratio {g / p:.3f}  "
          f"{extra_us:+.1f} us per item")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=1000, help="test examples per task")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-guards.json")
    args = parser.parse_args()

    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("minilm"))
    functions = test_examples("vulnerability", args.examples)
    pairs = test_examples("clone", args.examples)
    lines = [json.dumps({"id": ex.id, "code": ex.text}) for ex in functions]
    texts = [ex.text for ex in functions]
    firsts, seconds_ = [ex.text for ex in pairs], [ex.text_pair for ex in pairs]
    n = args.max_length
    if tokenize(tokenizer, texts, n) != tokenizer(texts, truncation=True, max_length=n)["input_ids"]:
        raise SystemExit("single-input ids differ from the tokenizer's own truncation")
    if tokenize(tokenizer, firsts, n, seconds_) != tokenizer(firsts, seconds_, truncation="longest_first",
                                                             max_length=n)["input_ids"]:
        raise SystemExit("joint pair ids differ from the tokenizer's own longest-first truncation")
    config_text = (ROOT / "configs" / "paper-tasks.yaml").read_text()

    rows = [
        compare("json lines (predict, readers)", lambda: [json_line(x) for x in lines],
                lambda: [json.loads(x) for x in lines], args.rounds, len(lines)),
        compare("tokenize single inputs", lambda: tokenize(tokenizer, texts, n),
                lambda: tokenizer(texts, truncation=True, max_length=n)["input_ids"], args.rounds, len(texts)),
        compare("tokenize joint pairs", lambda: tokenize(tokenizer, firsts, n, seconds_),
                lambda: tokenizer(firsts, seconds_, truncation="longest_first", max_length=n)["input_ids"],
                args.rounds, len(firsts)),
        compare("config YAML (paper-tasks.yaml)", lambda: [parse_yaml(config_text, "c") for _ in range(100)],
                lambda: [yaml.safe_load(config_text) for _ in range(100)], args.rounds, 100),
    ]
    write_json(args.out, {"cpu": cpu_info(), "max_length": n, "rows": rows})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
