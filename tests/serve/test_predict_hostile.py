"""`mtpeft predict` against what a hostile or careless user gives it: every input line parses to a valid input or
stops with ONE line naming file and line (never a traceback), sizes are bounded as the service bounds them, and
the answers never replace an input, nor half-replace an earlier output."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mtpeft.cli import app
from mtpeft.errors import DataError
from mtpeft.io import MAX_JSON_DIGITS
from mtpeft.serve.limits import Limits
from mtpeft.serve.predict_file import answers_to, parse_lines
from mtpeft.serve.predictor import Predictor
from mtpeft.serve.schemas import INPUTS, CodeInput, PoolItem, bounded
from mtpeft.tasks.spec import TaskKind
from tests.conftest import write_jsonl

runner = CliRunner()
LIMITS = Limits(max_text_chars=50, max_body_bytes=400)
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
# objects close to real inputs, so that the valid side of the parser is reached too
input_like = st.fixed_dictionaries({}, optional={"code": json_values | st.text(max_size=80), "id": json_values,
                                                 "code1": st.text(max_size=20), "cdoe": json_values})


def parse(data: bytes, model: type = CodeInput) -> dict:
    return parse_lines(io.BytesIO(data), "in.jsonl", bounded(model, LIMITS), "a binary input has code", 400)


def assert_one_line_or_valid(data: bytes, model: type = CodeInput) -> None:
    try:
        parsed = parse(data, model)
    except DataError as err:
        message = str(err)
        assert "\n" not in message and message.startswith("in.jsonl"), message
        return
    for number, item in parsed.items():
        assert isinstance(item, model) and 1 <= number <= data.count(b"\n") + 1
        assert all(len(getattr(item, f)) <= LIMITS.max_text_chars for f in item.model_fields if f != "id")
        assert item.id is None or (isinstance(item.id, str | int) and not isinstance(item.id, bool))


@PROPERTY
@given(st.lists(json_values | input_like, min_size=1, max_size=4))
def test_any_json_lines_give_valid_inputs_or_one_line(values: list) -> None:
    assert_one_line_or_valid("".join(json.dumps(v) + "\n" for v in values).encode())


@PROPERTY
@given(st.binary(max_size=500))
def test_any_bytes_give_valid_inputs_or_one_line(data: bytes) -> None:
    assert_one_line_or_valid(data)


@PROPERTY
@given(st.text(max_size=300), st.sampled_from([INPUTS[TaskKind.PAIR], INPUTS[TaskKind.RETRIEVAL], PoolItem]))
def test_any_text_gives_valid_inputs_or_one_line_for_every_kind(text: str, model: type) -> None:
    assert_one_line_or_valid(text.encode("utf-8", "surrogatepass"), model)


@pytest.mark.parametrize(("line", "message"), [
    ("[" * 100_000 + "]" * 100_000, "in.jsonl:1: JSON nested too deeply to read"),
    ('{"code": "x", "id": ' + "7" * 5001 + "}", f"in.jsonl:1: a number of 5,001 digits; numbers may have at most "
                                                 f"{MAX_JSON_DIGITS}"),
    ('{"code": "x", "id": 1.5}', "in.jsonl:1: field 'id': Value error, an id is a string or an integer, got a number "
                                 "with a fraction or exponent"),
    ('{"code": "' + "x" * 51 + '"}', "in.jsonl:1: field 'code': String should have at most 50 characters"),
])
def test_hostile_lines_are_one_line_errors(line: str, message: str) -> None:
    with pytest.raises(DataError) as err:
        parse_lines(io.BytesIO(line.encode() + b"\n"), "in.jsonl", bounded(CodeInput, LIMITS), "x", 10**6)
    assert str(err.value).startswith(message), err.value


def test_a_line_is_read_only_up_to_the_bound() -> None:
    endless = io.BytesIO(b'{"code": "' + b"x" * 10_000)  # /dev/zero on stdin: no newline ever
    with pytest.raises(DataError, match=r"in.jsonl:1: longer than 400 bytes"):
        parse_lines(endless, "in.jsonl", CodeInput, "x", 400)
    assert endless.tell() == 401


# ---------------------------------------------------------------- through the CLI, on the tiny trained run


def predict(*args: str, stdin: str | None = None):
    return runner.invoke(app, ["predict", *args], input=stdin)


def refused(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in result.stderr, result.stderr


@pytest.fixture
def no_model(monkeypatch):
    """The run must not even load: the error comes from the paths alone."""
    def fail(*args, **kwargs):
        raise AssertionError("the run was loaded before the paths were checked")
    monkeypatch.setattr(Predictor, "from_run", fail)


def test_the_output_may_not_be_an_input_under_any_name(tiny_run, tmp_path, monkeypatch, no_model):
    monkeypatch.chdir(tmp_path)
    original = b'{"code": "int main() { return 0; }"}\n'
    Path("in.jsonl").write_bytes(original)
    Path("pool.jsonl").write_bytes(b'{"id": 1, "code": "x"}\n')
    os.symlink("in.jsonl", "link.jsonl")
    os.link("in.jsonl", "hard.jsonl")
    for output in ("in.jsonl", "./in.jsonl", str(tmp_path / "in.jsonl"), "link.jsonl", "hard.jsonl"):
        refused(predict(str(tiny_run), "--task", "overflow", "--input", "in.jsonl", "--output", output),
                "is also the --input file")
    refused(predict(str(tiny_run), "--task", "find", "--input", "in.jsonl", "--pool", "pool.jsonl", "--output",
                    "pool.jsonl"), "is also the --pool file")
    assert Path("in.jsonl").read_bytes() == original


def test_the_output_may_not_be_the_file_on_stdin(tmp_path, monkeypatch):
    path = tmp_path / "in.jsonl"
    path.write_text('{"code": "x"}\n')
    with path.open() as stdin:
        monkeypatch.setattr(sys, "stdin", stdin)
        with pytest.raises(DataError, match="is also the file on stdin"), answers_to(str(path), {"--input": "-"}):
            pass


@pytest.mark.parametrize(("output", "message"), [
    ("/proc/version", "/proc/version: cannot be written"),
    ("nowhere/answers.jsonl", "folder"),
    (".", ".: is a folder; --output takes the path of a jsonl file"),
    ("/dev/null", "/dev/null: is a device; --output takes the path of a jsonl file to write (- for stdout)"),
])
def test_an_output_that_cannot_be_written_fails_before_the_model(tiny_run, tmp_path, monkeypatch, no_model, output,
                                                                 message):
    if not Path(output).parent.exists() and output.startswith("/"):
        pytest.skip(f"{output} is not on this system")
    monkeypatch.chdir(tmp_path)
    refused(predict(str(tiny_run), "--task", "overflow", "--output", output, stdin='{"code": "x"}\n'), message)
    assert not list(tmp_path.glob(".*.tmp"))


@pytest.mark.parametrize(("given", "message"), [
    (".", ".: is a folder; --input takes a jsonl file"),
    ("/dev/zero", "/dev/zero: is a device; --input takes a jsonl file"),
    ("missing.jsonl", "missing.jsonl: no such file"),
])
def test_an_input_that_is_not_a_file_is_named_as_what_it_is(tiny_run, tmp_path, monkeypatch, no_model, given,
                                                             message):
    monkeypatch.chdir(tmp_path)
    refused(predict(str(tiny_run), "--task", "overflow", "--input", given), message)


def test_a_failure_leaves_an_earlier_output_as_it_was(tiny_run, tmp_path):
    answers = tmp_path / "answers.jsonl"
    answers.write_text("earlier answers\n")
    bad = write_jsonl(tmp_path / "in.jsonl", [{"code": "fine"}, {"code": "x", "id": 2.5}])
    refused(predict(str(tiny_run), "--task", "overflow", "--input", str(bad), "--output", str(answers)),
            f"{bad}:2: field 'id'")
    assert answers.read_text() == "earlier answers\n" and not list(tmp_path.glob(".*.tmp"))


def test_answers_replace_an_output_only_when_complete_and_follow_links(tiny_run, tmp_path):
    good = write_jsonl(tmp_path / "in.jsonl", [{"code": "int f() { return 1; }", "id": i} for i in range(3)])
    target = tmp_path / "real.jsonl"
    target.write_text("old\n")
    os.symlink(target, tmp_path / "via-link.jsonl")
    result = predict(str(tiny_run), "--task", "overflow", "--input", str(good), "--output",
                     str(tmp_path / "via-link.jsonl"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "via-link.jsonl").is_symlink()  # the link stays; the file it names holds the answers
    assert [json.loads(line)["id"] for line in target.read_text().splitlines()] == [0, 1, 2]


@pytest.mark.parametrize("ids", [["a", "a"], [1, "1"]])
def test_repeated_pool_ids_are_refused_as_the_service_refuses_them(tiny_run, tmp_path, ids):
    pool = write_jsonl(tmp_path / "pool.jsonl", [{"id": ids[0], "code": "a"}, {"id": "z", "code": "b"},
                                                 {"id": ids[1], "code": "c"}])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "sort"}])
    refused(predict(str(tiny_run), "--task", "find", "--input", str(queries), "--pool", str(pool)),
            f"{pool}:3: id {ids[1]!r} is the id of line 1 too; pool ids must be unique")


def test_a_text_over_the_services_limit_is_refused_with_its_line(tiny_run, tmp_path):
    long = write_jsonl(tmp_path / "in.jsonl", [{"code": "x"}, {"code": "y" * (Limits().max_text_chars + 1)}])
    refused(predict(str(tiny_run), "--task", "overflow", "--input", str(long)),
            f"{long}:2: field 'code': String should have at most 200000 characters")


@settings(max_examples=8, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.binary(max_size=60) | json_values.map(lambda v: json.dumps(v).encode()), min_size=1, max_size=3))
def test_the_cli_answers_or_says_one_line(tiny_run, lines: list[bytes]) -> None:
    result = runner.invoke(app, ["predict", str(tiny_run), "--task", "overflow"], input=b"\n".join(lines) + b"\n")
    if result.exit_code == 0:
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        assert answers and all(set(a) >= {"task", "label", "probability", "truncated"} for a in answers)
    else:
        refused(result, "<stdin>")
