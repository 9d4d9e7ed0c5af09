"""Readers on the real files in ../shared/datasets and on small files written in each format."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from mtpeft.errors import DataError
from mtpeft.tasks import SOURCES
from mtpeft.tasks.readers.base import ALL
from tests.conftest import write_jsonl


def read(source: str, path: Path, **kwargs):
    return SOURCES.get(source).read(path, **kwargs)


# ---------------------------------------------------------------- real data


def test_bigvul_real(shared):
    examples = read("bigvul", shared / "vulnerability/bigvul")[ALL]
    vulnerable = [e for e in examples if e.label == 1]
    assert 1000 < len(vulnerable) <= 1256
    assert len(examples) > len(vulnerable)  # fixed versions added as negatives
    by_commit: dict[str, set[int]] = {}
    for e in examples:
        by_commit.setdefault(e.group, set()).add(e.label)
    assert sum(labels == {0, 1} for labels in by_commit.values()) > 400  # both versions share a commit


def test_bcb_csv_real(shared):
    examples = read("bcb-csv", shared / "clone/bigclonebench")[ALL]
    assert 3000 < len(examples) <= 4800
    assert {e.meta["clone_type"] for e in examples} == {"T1", "T2", "VST3", "ST3", "MT3", "WT3_4"}
    assert all(e.text_pair for e in examples)
    assert 0.3 < sum(e.label for e in examples) / len(examples) < 0.7


@pytest.mark.filterwarnings("ignore:flakeflagger")
def test_flakeflagger_real(shared):
    examples = read("flakeflagger", shared / "flakiness/flakeflagger")[ALL]
    assert 19000 <= len(examples) <= 19080  # a few published files are empty and skipped
    rate = sum(e.label for e in examples) / len(examples)
    assert 0.02 < rate < 0.05
    by_project = read("flakeflagger", shared / "flakiness/flakeflagger", split_by="project")[ALL]
    assert {e.group for e in by_project} == {p.name for p in (shared / "flakiness/flakeflagger").iterdir()}


def test_devign_evaluator_sample(shared):
    examples = read("devign", shared / "codexglue-evaluator-samples/Defect-detection-test.jsonl")[ALL]
    assert [e.text for e in examples[:2]] == ["func0", "func1"] and examples[1].label == 1


# ---------------------------------------------------------------- written files, every layout


def test_devign_folder_with_index_files(tmp_path):
    write_jsonl(tmp_path / "function.jsonl", [{"func": f"int f{i}() {{}}", "target": i % 2, "idx": i}
                                              for i in range(6)])
    for name, ids in (("train", "0\n1\n2\n"), ("valid", "3\n"), ("test", "4\n5\n")):
        (tmp_path / f"{name}.txt").write_text(ids)
    splits = read("devign", tmp_path)
    assert [len(splits[s]) for s in ("train", "validation", "test")] == [3, 1, 2]
    (tmp_path / "test.txt").write_text("4\n99\n")
    with pytest.raises(DataError, match=r"test.txt:2: idx '99' is not in function.jsonl"):
        read("devign", tmp_path)


def test_bcb_codexglue_layout(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", [{"func": f"void m{i}() {{}}", "idx": str(i)} for i in range(4)])
    for name in ("train", "valid", "test"):
        (tmp_path / f"{name}.txt").write_text("0\t1\t1\n2\t3\t0\n")
    splits = read("bcb-codexglue", tmp_path)
    assert splits["train"][0].text == "void m0() {}" and splits["train"][0].text_pair == "void m1() {}"
    (tmp_path / "valid.txt").write_text("0\t7\t1\n")
    with pytest.raises(DataError, match=r"valid.txt:1: idx '7' is not in data.jsonl"):
        read("bcb-codexglue", tmp_path)


def test_csn_gz_and_docstring_removed(tmp_path):
    row = {"repo": "r", "path": "p.py", "func_name": "add", "docstring": "Add two numbers. Returns the sum.",
           "code": 'def add(a, b):\n    """Add two numbers. Returns the sum."""\n    return a + b'}
    path = tmp_path / "train.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(json.dumps(row) + "\n")
    (example,) = read("csn", path)[ALL]
    assert example.text == "Add two numbers."
    assert "Add two numbers" not in example.text_pair and "return a + b" in example.text_pair


def test_generic_jsonl_and_csv_mapping(tmp_path):
    write_jsonl(tmp_path / "d.jsonl", [{"code": "x", "y": 1, "part": "dev"}, {"code": "z", "y": 0, "part": "train"}])
    out = read("jsonl", tmp_path / "d.jsonl", text_field="code", label_field="y", split_field="part")
    assert [e.text for e in out["validation"]] == ["x"] and [e.label for e in out["train"]] == [0]
    (tmp_path / "d.csv").write_text("code,y\nfoo,1\nbar,0\n")
    assert len(read("csv", tmp_path / "d.csv", text_field="code", label_field="y")[ALL]) == 2


# ---------------------------------------------------------------- malformed input: file, line, field


def test_jsonl_not_json(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"func": "a", "target": 0}\n{not json}\n')
    with pytest.raises(DataError, match=r"bad.jsonl:2: not valid JSON"):
        read("devign", path)


@pytest.mark.parametrize(("line", "message"), [
    ('{"func": "a", "target": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON nested too deeply to read"),
    ('{"func": "a", "target": 0, "idx": ' + "9" * 5001 + "}", "a number of 5,001 digits; numbers may have at most"),
])
def test_jsonl_lines_that_would_exhaust_the_parser_are_one_line_errors(tmp_path, line, message):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"func": "a", "target": 0}\n' + line + "\n")
    with pytest.raises(DataError, match=rf"bad.jsonl:2: {message}"):
        read("devign", path)


def test_jsonl_missing_field(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"func": "a", "target": 0}, {"func": "b"}])
    with pytest.raises(DataError, match=r"bad.jsonl:2: missing field 'target' \(fields present: func\)"):
        read("devign", path)


def test_bad_label(tmp_path):
    path = write_jsonl(tmp_path / "bad.jsonl", [{"func": "a", "target": "yes"}])
    with pytest.raises(DataError, match=r"bad.jsonl:1: field 'target' is 'yes'; expected 0 or 1"):
        read("devign", path)


def test_csv_row_with_wrong_field_count_names_its_line(tmp_path):
    path = tmp_path / "T1.csv"
    path.write_text('FUNCTION_ONE,FUNCTION_TWO,LABEL\n"a\nb","c",1\n"d","e"\n')
    with pytest.raises(DataError, match=r"T1.csv:4: row has 2 fields, the header has 3"):
        read("bcb-csv", path)


def test_csv_missing_column(tmp_path):
    path = tmp_path / "CWE-1.csv"
    path.write_text("func_before,vul\nx,1\n")
    with pytest.raises(DataError, match=r"CWE-1.csv:1: missing column\(s\) func_after, commit_id"):
        read("bigvul", path)


def test_missing_folder(tmp_path):
    with pytest.raises(DataError, match="no such folder"):
        read("flakeflagger", tmp_path / "nope")


def test_flakeflagger_project_without_label_folders(tmp_path):
    (tmp_path / "proj" / "other").mkdir(parents=True)
    with pytest.raises(DataError, match=r"proj: expected a flakyMethods/ and/or nonFlakyMethods/ folder"):
        read("flakeflagger", tmp_path)
