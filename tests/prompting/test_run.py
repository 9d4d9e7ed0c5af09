"""`mtpeft prompt` end to end on tiny-llama: a complete run directory that studies and reports accept."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.io import read_json
from mtpeft.run.files import is_complete
from mtpeft.study import write_report
from mtpeft.study.collect import collect
from tests.conftest import write_jsonl

pytestmark = pytest.mark.filterwarnings("ignore:.*no trained LM head")  # tiny-llama's head is random, by design
runner = CliRunner()
FAST = ["max_length=384", "max_code_tokens=48", "max_new_tokens=3", "batch_size=8", "rerank_top=3"]


@pytest.fixture
def search_jsonl(tmp_path: Path) -> Path:
    """CodeSearchNet-style rows, one repository each so that they split."""
    words = ["sum", "max", "min", "sorted", "len", "abs", "any", "all", "set", "list"]
    return write_jsonl(tmp_path / "search.jsonl", [
        {"repo": f"r{i}", "path": f"m{i}.py", "func_name": f"f{i}", "docstring": f"Return the {w} of the items {i}.",
         "code": f"def f{i}(items):\n    return {w}(items) + {i}\n"}
        for i, w in enumerate(words * 4)])


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "prompt.yaml"
    path.write_text(f"name: tiny-prompt\nmodel: tiny-llama\noutput_dir: {tmp_path / 'study' / 'runs' / 'p'}\n{body}")
    return path


def test_prompt_writes_a_run_directory_that_reports_read(tmp_path: Path, tiny_jsonl_task: Path,
                                                         search_jsonl: Path) -> None:
    config = write_config(tmp_path, f"""tasks:
  - name: vulnerability
    source: devign
    path: {tiny_jsonl_task}
    max_examples: {{train: 32, validation: 8, test: 12}}
  - name: search
    source: csn
    path: {search_jsonl}
""")
    result = runner.invoke(app, ["prompt", str(config), "shots=2", *FAST])
    assert result.exit_code == 0, result.output
    run = tmp_path / "study" / "runs" / "p"
    assert is_complete(run) and read_json(run / "run.json")["status"] == "complete"

    metrics = read_json(run / "metrics.json")["tasks"]
    vuln, search = metrics["vulnerability"], metrics["search"]
    assert (vuln["kind"], vuln["metric"]) == ("binary", "accuracy")
    assert (search["kind"], search["metric"]) == ("retrieval", "mrr")
    assert {"accuracy", "f1", "mcc", "unparseable_rate", "predicted_positive_rate"} <= set(vuln["test"])
    assert vuln["test"]["mean_shots"] == 2 and "test" in vuln["baseline"]
    assert {"mrr", "recall@1", "embedding_mrr"} <= set(search["test"])
    assert (vuln["lexical"]["method"], search["lexical"]["method"]) == ("tf-idf + logistic regression", "bm25")
    assert (run / "predictions" / "vulnerability.test.lexical.jsonl").is_file()  # studies pair the prompts with it

    rows = [json.loads(line) for line in (run / "predictions" / "vulnerability.test.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and {"id", "label", "probability", "prediction", "answer", "p_yes"} <= set(rows[0])
    pool = [json.loads(line) for line in (run / "predictions" / "search.test.jsonl").read_text().splitlines()]
    assert {"id", "rank", "top"} <= set(pool[0]) and all(1 <= r["rank"] <= len(pool) for r in pool)
    packed = run / "predictions" / "search.test.jsonl.gz"  # what a committed results/ folder keeps
    assert [json.loads(line) for line in gzip.decompress(packed.read_bytes()).splitlines()] == pool

    ledger = read_json(run / "ledger.json")
    assert ledger["run_info"]["method"] == "prompt-2shot" and ledger["parameters"]["trainable"] == 0
    assert ledger["storage"]["bytes_total"] == 0 and ledger["train_info"]["flops"]["total"] == 0
    # one prompt per classified example; per query: embed it and its code, re-rank the top 3
    assert ledger["train_info"]["prompts"] == len(rows) + len(pool) * (1 + 1 + 3)

    (record,), unfinished = collect(tmp_path / "study")
    assert not unfinished
    assert (record.setting, record.method, record.model, record.seed) == ("prompt", "prompt-2shot", "tiny-llama", 42)
    report = write_report(tmp_path / "study").read_text()
    assert "## Prompting (no training)" in report and "| tiny-llama | prompt-2shot | 1 | 0.00 |" in report
    assert "MFT (" not in report and "| PROMPT |" in report  # in the ledger, never in the MFT/SFT tables

    again = runner.invoke(app, ["prompt", str(config)])
    assert again.exit_code == 2 and "already exists" in again.stderr


def test_custom_task_needs_a_template_and_score_mode_uses_it(tmp_path: Path, tiny_jsonl_task: Path) -> None:
    config = write_config(tmp_path, f"""tasks:
  - name: overflow
    kind: binary
    source: devign
    path: {tiny_jsonl_task}
    max_examples: {{test: 8}}
mode: score
""")
    result = runner.invoke(app, ["prompt", str(config)])
    assert result.exit_code == 2 and "no packaged prompt template" in result.stderr
    assert "templates: {overflow: FILE}" in result.stderr

    (tmp_path / "bad.txt").write_text("Does this overflow?")
    result = runner.invoke(app, ["prompt", str(config), "templates={overflow: bad.txt}"])
    assert result.exit_code == 2 and "lacks the placeholder(s) {text}" in result.stderr

    (tmp_path / "overflow.txt").write_text("Can this C code overflow a buffer?\n{text}\nAnswer yes or no.")
    result = runner.invoke(app, ["prompt", str(config), "templates={overflow: overflow.txt}", *FAST])
    assert result.exit_code == 0, result.output
    run = tmp_path / "study" / "runs" / "p"
    ledger = read_json(run / "ledger.json")["run_info"]
    assert ledger["method"] == "prompt-0shot-score" and ledger["templates"]["overflow"].endswith("overflow.txt")
    rows = [json.loads(line) for line in (run / "predictions" / "overflow.test.jsonl").read_text().splitlines()]
    assert all(r["prediction"] == int(r["probability"] >= 0.5) and "answer" not in r for r in rows)
    assert "unparseable_rate" not in read_json(run / "metrics.json")["tasks"]["overflow"]["test"]


def test_prompt_generation_task_with_demonstrations(tmp_path: Path) -> None:
    config = write_config(tmp_path, """tasks:
  - name: summarization
    reader_args: {max_lines: 12}
    max_target_length: 6
    max_examples: {train: 24, validation: 4, test: 6}
""")
    result = runner.invoke(app, ["prompt", str(config), "shots=2", *FAST])
    assert result.exit_code == 0, result.output
    run = tmp_path / "study" / "runs" / "p"
    summary = read_json(run / "metrics.json")["tasks"]["summarization"]
    assert summary["metric"] == "smoothed_bleu" and 1 <= summary["test"]["mean_shots"] <= 2  # as many as fit
    assert {"bleu", "smoothed_bleu", "exact_match"} <= set(summary["test"])
    rows = [json.loads(x) for x in (run / "predictions" / "summarization.test.jsonl").read_text().splitlines()]
    assert len(rows) == 6 and all(r["reference"] for r in rows) and max(r["shots"] for r in rows) == 2
