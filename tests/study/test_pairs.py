"""`mtpeft pairs` end to end with a tiny model on three stdlib tasks (real training processes)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.study.collect import collect

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMALL = "{train: 48, validation: 32, test: 32}"


def test_pairs_measures_estimates_and_groups(tmp_path: Path) -> None:
    args = ["pairs", str(CONFIGS / "study-smoke.yaml"), f"output_dir={tmp_path}",
            "tasks=[search, docstring-mismatch, name-mismatch]", "axes.model=[tiny-bert]", "axes.method=[lora]",
            "overrides=[" + ", ".join(f"'tasks.{i}.max_examples={SMALL}'" for i in range(3))
            + ", train.epochs=1, train.max_length=48, train.batch_size=16]",
            "--groups", "2", "--train-groups", "--estimate-steps", "3", "--estimate-steps", "5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    records, unfinished = collect(tmp_path)
    assert not unfinished
    assert sorted(r.setting for r in records) == ["mft", *["pair"] * 3, *["sft"] * 3]  # 2-task groups reuse pairs

    report = json.loads((tmp_path / "pairs.json").read_text())
    (analysis,) = report["analyses"]
    tasks = analysis["tasks"]
    alone = {r.tasks[0]: r.score(r.tasks[0]) for r in records if r.setting == "sft"}
    for r in (r for r in records if r.setting == "pair"):
        a, b = r.tasks
        i, j = tasks.index(a), tasks.index(b)
        assert analysis["transfer"][i][j] == pytest.approx(r.score(a) - alone[a], abs=1e-6)
        assert analysis["transfer"][j][i] == pytest.approx(r.score(b) - alone[b], abs=1e-6)
    assert all(analysis["transfer"][i][i] is None for i in range(3))
    for r in (r for r in records if r.setting == "sft"):  # each task alone against its own lexical baseline
        task = r.tasks[0]
        versus = analysis["versus_lexical"][task]
        assert versus["lexical"] == pytest.approx(r.lexical_score(task))
        assert versus["alone_minus_lexical"] == pytest.approx(r.score(task) - r.lexical_score(task))
    assert set(analysis["spearman"]) == {f"{signal}, {steps} steps" for signal in ("gradient cosine", "lookahead (TAG)")
                                         for steps in (3, 5)}
    three, five = analysis["estimates"]
    assert (three["steps"], five["steps"]) == (3, 5) and 0 < three["flops"] < five["flops"]
    assert analysis["pair_training"]["flops"] > 0
    grouping = analysis["groupings"]["measured"]
    assert sorted(t for g in grouping["groups"] for t in g) == sorted(tasks) and len(grouping["groups"]) <= 2
    for i, row in enumerate(analysis["transfer_tests"]):  # tested on the same predictions the matrix is read from
        for j, cell in enumerate(row):
            if i == j:
                assert cell is None
            else:
                assert cell["delta"] == pytest.approx(analysis["transfer"][i][j], abs=1e-6)
                assert cell["low"] <= cell["delta"] <= cell["high"] and 0 <= cell["p_value"] <= 1
    layouts = {x["label"]: x for x in analysis["layouts"]}
    assert layouts["all alone"]["scores"] == {**alone, "macro": pytest.approx(np.mean(list(alone.values())))}
    assert layouts["all alone"]["modules"] == 3 and layouts["all in one"]["modules"] == 1
    assert layouts["all alone"]["bytes_stored"] > layouts["all in one"]["bytes_stored"]
    assert "grouped" in layouts and set(analysis["trained_groups"]["versus"]) == {"all alone", "all in one"}
    costs = {c["accounting"]: c for c in analysis["costs"]}
    sft_runs = [r for r in records if r.setting == "sft"]
    assert costs["training FLOPs"]["sft"] == sum(r.ledger.train_info.flops.total for r in sft_runs)
    assert costs["backbone passes to answer one input for every task"]["saving_percent"] == pytest.approx(100 * 2 / 3)
    assert set(report["data_quality"]["tasks"]) == set(tasks)

    text = (tmp_path / "pairs.md").read_text()
    for heading in ("Transfer matrix", "Against the lexical baseline", "Asymmetry", "Cheap estimates",
                    "Recommended grouping", "Data quality",
                    "recommended groups, trained"):
        assert heading in text
    for figure in ("transfer", "stability", "asymmetry", "complementarity", "layouts"):
        image = imread(tmp_path / "plots" / f"{figure}_tiny-bert_lora.png")
        assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50, figure
    image = imread(tmp_path / "plots" / "data_quality.png")
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 50
