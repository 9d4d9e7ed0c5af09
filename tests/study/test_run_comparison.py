"""`mtpeft compare`: finished runs against each other (or the lexical baseline) on the same examples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.errors import RunError
from mtpeft.run.files import RunFiles
from mtpeft.study.run_comparison import compare_runs

LABELS = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]


def write_run(root: Path, name: str, tasks: dict[str, dict], complete: bool = True) -> Path:
    """A run directory as the loop leaves it, as far as a comparison reads it: metrics.json, run.json and the
    prediction files (``tasks``: name -> {metric, rows, optional lexical rows}); the weights are placeholders."""
    run = root / name
    (run / "predictions").mkdir(parents=True)
    for required in RunFiles(run).required():
        required.touch()
    metrics = {"tasks": {}, "mean": {}}
    for task, spec in tasks.items():
        metrics["tasks"][task] = {"kind": "retrieval" if spec["metric"] == "mrr" else "binary",
                                  "metric": spec["metric"], "test": {spec["metric"]: 0.0}}
        for suffix, rows in (("test", spec["rows"]), ("test.lexical", spec.get("lexical"))):
            if rows is not None:
                (run / "predictions" / f"{task}.{suffix}.jsonl").write_text(
                    "".join(json.dumps(row) + "\n" for row in rows))
        if spec.get("lexical") is not None:
            metrics["tasks"][task]["lexical"] = {"method": "tfidf", "test": {spec["metric"]: 0.0}}
    (run / "metrics.json").write_text(json.dumps(metrics))
    (run / "run.json").write_text(json.dumps({"status": "complete" if complete else "training"}))
    return run


def binary_rows(correct: int, ids: range = range(10)) -> list[dict]:
    """Predictions right on the first ``correct`` examples and wrong on the rest."""
    rows = []
    for n, i in enumerate(ids):
        label = LABELS[i % 10]
        rows.append({"id": f"e{i}", "label": label, "prediction": label if n < correct else 1 - label})
    return rows


def test_the_difference_is_the_metric_difference_on_the_same_examples(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"vuln": {"metric": "accuracy", "rows": binary_rows(8)}})
    b = write_run(tmp_path, "b", {"vuln": {"metric": "accuracy", "rows": binary_rows(6)}})
    row, = compare_runs(a, [b]).tasks
    assert (row.a, row.b, row.paired.n) == (0.8, 0.6, 10)
    assert row.paired.delta == pytest.approx(0.2)
    assert row.paired.low <= 0.2 <= row.paired.high
    assert row.paired.p_mcnemar == pytest.approx(0.5)  # 2 discordant pairs, both for A: binomial(2, 1/2) two-sided


def test_retrieval_is_compared_on_reciprocal_ranks(tmp_path: Path) -> None:
    def ranks(first: int, second: int) -> dict:
        return {"search": {"metric": "mrr", "rows": [{"id": "q1", "rank": first}, {"id": "q2", "rank": second}]}}

    a, b = write_run(tmp_path, "a", ranks(1, 4)), write_run(tmp_path, "b", ranks(2, 1))
    row, = compare_runs(a, [b]).tasks
    assert (row.a, row.b) == (pytest.approx(0.625), pytest.approx(0.75))


def test_single_task_runs_answer_the_shared_runs_tasks_and_the_macro_averages_them(tmp_path: Path) -> None:
    a = write_run(tmp_path, "mft", {"x": {"metric": "accuracy", "rows": binary_rows(9)},
                                    "y": {"metric": "accuracy", "rows": binary_rows(5)},
                                    "z": {"metric": "accuracy", "rows": binary_rows(7)}})
    sft_x = write_run(tmp_path, "sft-x", {"x": {"metric": "accuracy", "rows": binary_rows(7)}})
    sft_y = write_run(tmp_path, "sft-y", {"y": {"metric": "accuracy", "rows": binary_rows(9)}})
    result = compare_runs(a, [sft_x, sft_y])
    assert {r.task: r.b_source for r in result.tasks} == {"x": str(sft_x), "y": str(sft_y)}
    assert result.macro == (pytest.approx(0.7), pytest.approx(0.8))
    assert result.skipped == {"z": "no compared run has this task"}


def test_without_b_the_run_is_compared_with_its_own_lexical_baseline(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"clone": {"metric": "accuracy", "rows": binary_rows(6), "lexical": binary_rows(9)},
                                  "other": {"metric": "accuracy", "rows": binary_rows(6)}})
    result = compare_runs(a)
    row, = result.tasks
    assert (row.task, row.b_source, row.a, row.b) == ("clone", "lexical", 0.6, 0.9)
    assert "other" in result.skipped


def test_another_metric_compares_probabilities_threshold_free(tmp_path: Path) -> None:
    """--metric average_precision ranks each system's probabilities: a run whose decisions are worse can rank
    better; tasks without the metric are skipped with the reason."""
    labels = [1, 0, 1, 0]
    ranks_well = [{"id": f"e{i}", "label": y, "prediction": 0, "probability": p}
                  for i, (y, p) in enumerate(zip(labels, [0.4, 0.3, 0.2, 0.1], strict=True))]
    decides_well = [{"id": f"e{i}", "label": y, "prediction": y, "probability": p}
                    for i, (y, p) in enumerate(zip(labels, [0.6, 0.9, 0.2, 0.1], strict=True))]
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": ranks_well},
                                  "search": {"metric": "mrr", "rows": [{"id": "q", "rank": 1}]}})
    b = write_run(tmp_path, "b", {"t": {"metric": "accuracy", "rows": decides_well},
                                  "search": {"metric": "mrr", "rows": [{"id": "q", "rank": 2}]}})
    assert compare_runs(a, [b]).tasks[0].paired.delta == pytest.approx(-0.5)
    result = compare_runs(a, [b], metric="average_precision")
    row, = result.tasks
    assert (row.metric, row.a, row.b) == ("average_precision", pytest.approx(5 / 6), pytest.approx(7 / 12))
    assert np.isnan(row.paired.p_mcnemar)  # McNemar counts decisions, which this metric does not read
    assert result.skipped == {"search": "a retrieval task has no average_precision"}
    with pytest.raises(RunError, match="--metric 'auc': expected one of"):
        compare_runs(a, [b], metric="auc")


def test_only_the_examples_both_runs_have_are_compared(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": binary_rows(10)}})
    b = write_run(tmp_path, "b", {"t": {"metric": "accuracy", "rows": binary_rows(4, range(4))}})
    row, = compare_runs(a, [b]).tasks
    assert (row.paired.n, row.examples_a, row.examples_b, row.a, row.b) == (4, 10, 4, 1.0, 1.0)


@pytest.mark.parametrize(("b_tasks", "message"), [
    ({"t": {"metric": "f1", "rows": binary_rows(5)}}, "scored by f1"),
    ({"t": {"metric": "accuracy", "rows": binary_rows(5, range(10, 20))}}, "no test example of task 't' in common"),
    ({"u": {"metric": "accuracy", "rows": binary_rows(5)}}, "nothing to compare"),
])
def test_runs_that_cannot_be_paired_are_refused_with_the_reason(tmp_path: Path, b_tasks: dict, message: str) -> None:
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    with pytest.raises(RunError, match=message):
        compare_runs(a, [write_run(tmp_path, "b", b_tasks)])


def test_a_split_the_run_did_not_score_is_named(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})  # scored on test only
    b = write_run(tmp_path, "b", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    with pytest.raises(RunError, match="has no validation scores \\(it has test\\)"):
        compare_runs(a, [b], split="validation")


def test_two_runs_with_the_same_task_are_ambiguous(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    b1 = write_run(tmp_path, "b1", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    b2 = write_run(tmp_path, "b2", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    with pytest.raises(RunError, match="both have task 't'"):
        compare_runs(a, [b1, b2])


def test_an_unfinished_run_is_refused(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"t": {"metric": "accuracy", "rows": binary_rows(5)}})
    b = write_run(tmp_path, "b", {"t": {"metric": "accuracy", "rows": binary_rows(5)}}, complete=False)
    with pytest.raises(RunError, match="not a finished run"):
        compare_runs(a, [b])


def test_the_command_prints_the_table_the_json_and_one_line_errors(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", {"vuln": {"metric": "accuracy", "rows": binary_rows(8)}})
    b = write_run(tmp_path, "b", {"vuln": {"metric": "accuracy", "rows": binary_rows(6)}})
    runner = CliRunner()
    shown = runner.invoke(app, ["compare", str(a), str(b)])
    assert shown.exit_code == 0, shown.output
    assert "+0.2000" in shown.output and "macro over 1 task: A 0.8000, B 0.6000" in shown.output
    as_json = runner.invoke(app, ["compare", str(a), str(b), "--json"])
    assert json.loads(as_json.stdout)["tasks"][0]["delta"] == pytest.approx(0.2)
    refused = runner.invoke(app, ["compare", str(a), str(tmp_path / "missing")])
    assert refused.exit_code == 2 and "no such run directory" in refused.output
    wrong_split = runner.invoke(app, ["compare", str(a), str(b), "--split", "train"])
    assert wrong_split.exit_code == 2 and "expected one of validation, test" in wrong_split.output


def test_folds_are_pooled_against_their_pooled_lexical_baselines(tmp_path: Path) -> None:
    """Each fold scores other examples (its own test projects); pooled, A is right on 7 + 4 of 20 and the
    lexical baselines on 5 + 10, whatever each fold scored alone."""
    folds = [write_run(tmp_path, "fold0", {"t": {"metric": "accuracy", "rows": binary_rows(7),
                                                 "lexical": binary_rows(5)}}),
             write_run(tmp_path, "fold1", {"t": {"metric": "accuracy", "rows": binary_rows(4, range(10, 20)),
                                                 "lexical": binary_rows(10, range(10, 20))}})]
    result = compare_runs(folds)
    row, = result.tasks
    assert (row.paired.n, row.a, row.b, row.b_source) == (20, 0.55, 0.75, "lexical")
    assert result.folds == folds
    shown = CliRunner().invoke(app, ["compare", *map(str, folds), "--pool"])
    assert shown.exit_code == 0, shown.output
    assert "2 folds pooled" in shown.output and "-0.2000" in shown.output


@pytest.mark.parametrize(("second", "b", "message"), [
    ({"t": {"metric": "accuracy", "rows": binary_rows(4), "lexical": binary_rows(4)}}, False,
     "10 test examples of task 't' are also in an earlier fold"),
    ({"t": {"metric": "f1", "rows": binary_rows(4, range(10, 20))}}, False, "pooled folds must be runs of one config"),
    ({"t": {"metric": "accuracy", "rows": binary_rows(4, range(10, 20))}}, True, "give no runs B with them"),
])
def test_runs_that_are_not_folds_of_one_split_are_not_pooled(tmp_path: Path, second: dict, b: bool,
                                                             message: str) -> None:
    first = write_run(tmp_path, "fold0", {"t": {"metric": "accuracy", "rows": binary_rows(7),
                                                "lexical": binary_rows(5)}})
    other = write_run(tmp_path, "fold1", second)
    with pytest.raises(RunError, match=message):
        compare_runs([first, other], [first] if b else ())
