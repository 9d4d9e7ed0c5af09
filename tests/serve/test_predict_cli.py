"""`mtpeft predict` and `mtpeft serve` through the CLI: answers equal the server's, errors name file:line:field."""

from __future__ import annotations

import json

import numpy as np
import pytest
import requests
from typer.testing import CliRunner

from mtpeft.cli import app
from tests.conftest import write_jsonl
from tests.serve.conftest import binary_rows, pair_rows, search_rows
from tests.serve.test_app import AUTH, post

runner = CliRunner()


def predict(*args: str, stdin: str | None = None):
    return runner.invoke(app, ["predict", *args], input=stdin)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_binary_and_pair_answers_equal_the_servers(tiny_run, server, tmp_path):
    code = [{"code": r["text"], "id": i} for i, r in enumerate(binary_rows(5))]
    result = predict(str(tiny_run), "--task", "overflow", "--input", str(write_jsonl(tmp_path / "in.jsonl", code)),
                     "--batch-size", "2")
    assert result.exit_code == 0, result.stderr
    cli = lines(result.stdout)
    served = post(server, "/v1/predict", {"items": [{"task": "overflow", **c} for c in code]}).json()["results"]
    assert [r["id"] for r in cli] == list(range(5))
    assert [r["label"] for r in cli] == [r["label"] for r in served]
    np.testing.assert_allclose([r["probability"] for r in cli], [r["probability"] for r in served],
                               rtol=1e-5, atol=1e-6)

    pairs = "".join(json.dumps({"code1": r["a"], "code2": r["b"]}) + "\n\n" for r in pair_rows(3))  # blank lines ok
    out = tmp_path / "out.jsonl"
    result = predict(str(tiny_run), "--task", "same", "--output", str(out), stdin=pairs)
    assert result.exit_code == 0, result.stderr
    assert "wrote 3 answers" in result.stderr
    rows = lines(out.read_text())
    assert [set(r) for r in rows] == [{"task", "label", "probability", "truncated"}] * 3


def test_retrieval_ranks_the_pool_like_the_server(tiny_run, server, tmp_path):
    rows = search_rows(10)
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"id": f"fn{i}", "code": r["code"]} for i, r in enumerate(rows)])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": rows[i]["query"], "id": i} for i in (1, 4)])
    result = predict(str(tiny_run), "--task", "find", "--input", str(queries), "--pool", str(pool), "--top-k", "3")
    assert result.exit_code == 0, result.stderr
    cli = lines(result.stdout)
    assert post(server, "/v1/search/index", {"name": "cli", "items": [json.loads(x) for x in pool.read_text()
                                                                      .splitlines()]}).status_code == 200
    for row, i in zip(cli, (1, 4), strict=True):
        served = post(server, "/v1/search", {"task": "find", "index": "cli", "query": rows[i]["query"], "top_k": 3})
        assert row["id"] == i and [h["id"] for h in row["hits"]] == [h["id"] for h in served.json()["hits"]]
        np.testing.assert_allclose([h["score"] for h in row["hits"]], [h["score"] for h in served.json()["hits"]],
                                   rtol=1e-5, atol=1e-6)
    assert requests.delete(f"{server}/v1/search/index/cli", headers=AUTH, timeout=10).status_code == 204


@pytest.mark.parametrize(("content", "message"), [
    ('{"code": "a"}\n{"cdoe": "b"}\n', ":2: field 'code': Field required; field 'cdoe': Extra inputs are not "
                                       "permitted (a binary input has code and an optional id)"),
    ('{"code": "a"}\n\n{"code": 5}\n', ":3: field 'code': Input should be a valid string"),
    ('{"code": "a"}\n{"code": "b",\n', ":2: not valid JSON (Expecting property name enclosed in double quotes at "
                                      "column 14)"),
    ('["a"]\n', ":1: expected a JSON object, got list"),
    ("\n\n", ": no inputs"),
    (b'{"code": "a"}\n{"code": "caf\xe9"}\n', ":2: not UTF-8 text (byte 14 of the line is 0xe9)"),
    ('{"code": "a\\ud800"}\n', ":1: field 'code': Value error, not valid Unicode text: a lone surrogate at "
                              "character 1"),
])
def test_a_bad_line_names_file_line_and_field(tiny_run, tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = predict(str(tiny_run), "--task", "overflow", "--input", str(path))
    assert result.exit_code == 2
    assert f"error: {path}{message}" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--task", "nope"], "--task 'nope': the run has tasks find, overflow, same"),
    (["--task", "find"], "--pool: needed for retrieval tasks"),
    (["--task", "overflow", "--pool", "p.jsonl"], "'overflow' is a binary task"),
    (["--task", "overflow", "--input", "missing.jsonl"], "missing.jsonl: no such file"),
    (["--task", "overflow", "--output", "."], ".: is a folder; --output takes the path of a jsonl file"),
])
def test_predict_usage_errors_exit_2(tiny_run, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "p.jsonl", [{"id": 1, "code": "x"}])
    result = predict(str(tiny_run), *args, stdin='{"code": "x"}\n')
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_serve_refuses_a_missing_run_before_binding(tmp_path):
    result = runner.invoke(app, ["serve", str(tmp_path / "nowhere"), "--port", "1"])
    assert result.exit_code == 2 and "no such run directory" in result.stderr
