"""Benchmark: what the lexical baseline costs a run, on the paper's datasets at full size.

Every run fits the lexical baseline (:mod:`mtpeft.baselines`) on its training split and scores its validation and
test splits, so it must take seconds, not minutes, on ~20k examples. Measured here per task, fit + scoring of both
splits, as `mtpeft train` does it: Devign (16,227 training functions), CodeXGLUE BigCloneBench (20,000 training
pairs), FlakeFlagger (stratified split of ~19k tests), code search (BM25 over the stdlib pool; pool size given).

Reading the data is not timed (the run reads it anyway). The JSON records the CPU and the scores, so a change
that makes the baseline faster can be checked not to make it weaker.

Usage:
    python bench/lexical_baseline.py                     # -> runs/bench-lexical-baseline.json
    python bench/lexical_baseline.py --clone-pairs 90102  # every training pair of BigCloneBench
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from mtpeft.baselines import lexical_baseline
from mtpeft.config import config_from_dict
from mtpeft.evaluate.outputs import score
from mtpeft.io import write_json
from mtpeft.ledger import cpu_info
from mtpeft.tasks import load_task

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"


def tasks(clone_pairs: int, search_pool: int) -> list[dict[str, Any]]:
    return [
        {"name": "vulnerability", "source": "devign", "path": str(SHARED / "vulnerability" / "devign")},
        {"name": "clone", "source": "bcb-codexglue", "path": str(SHARED / "clone" / "bcb-codexglue"),
         "max_examples": {"train": clone_pairs}},
        {"name": "flakiness", "source": "flakeflagger", "path": str(SHARED / "flakiness" / "flakeflagger")},
        {"name": "search", "source": "stdlib-search", "max_examples": {"test": search_pool}},
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clone-pairs", type=int, default=20_000, help="BigCloneBench training pairs")
    parser.add_argument("--search-pool", type=int, default=2_000, help="code search test pool (candidates)")
    parser.add_argument("--out", type=Path, default=ROOT / "runs" / "bench-lexical-baseline.json")
    args = parser.parse_args()
    results = {}
    for entry in tasks(args.clone_pairs, args.search_pool):
        config = config_from_dict({"name": "bench", "tasks": [entry]})
        data = load_task(config.tasks[0], config)
        start = time.perf_counter()
        result = lexical_baseline(data.spec, data.splits["train"], data.splits["validation"],
                                  {"test": data.splits["test"]})
        seconds = time.perf_counter() - start
        test = score(result.outputs["test"], result.threshold if result.threshold is not None else 0.5)
        results[entry["name"]] = {
            "source": entry["source"], "method": result.method, "seconds": round(seconds, 2),
            "examples": {split: len(examples) for split, examples in data.splits.items()},
            "test": {data.spec.metric: round(test[data.spec.metric], 4)},
        }
        print(f"{entry['name']:14s} {seconds:6.1f} s  train {len(data.splits['train']):>6,}  "
              f"test {data.spec.metric} {test[data.spec.metric]:.4f}", flush=True)
    write_json(args.out, {"cpu": cpu_info(), "tasks": results})
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
