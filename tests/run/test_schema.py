"""metrics.json and ledger.json read and write through their schemas: files without a version read as the
current one, a malformed file is an error that names it and the field, and writing keeps the file's shape."""

from __future__ import annotations

import json

import pytest

from mtpeft.errors import RunError
from mtpeft.run.schema import SCHEMA_VERSION, Metrics, read_ledger, read_metrics, write_record

METRICS = {
    "tasks": {
        "clone": {"kind": "pair", "metric": "f1", "threshold": 0.41,
                  "validation": {"accuracy": 0.8, "f1": 0.79}, "test": {"accuracy": 0.75, "f1": 0.74},
                  "baseline": {"validation": 0.66, "test": 0.66},
                  "lexical": {"method": "tf-idf", "threshold": 0.5, "validation": {"f1": 0.9}, "test": {"f1": 0.88}}},
        "search": {"kind": "retrieval", "metric": "mrr", "threshold": None, "validation": {"mrr": 0.7},
                   "test": {"mrr": 0.6}, "baseline": {"validation": 0.02, "test": 0.02}},
    },
    "mean": {"validation": 0.745, "test": 0.67},
    "selected": {"epoch": 2, "optimizer_step": 126, "validation_mean": 0.745},
}


def test_a_file_without_version_reads_as_the_current_one(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(METRICS))
    metrics = read_metrics(path)
    assert metrics.schema_version == SCHEMA_VERSION
    assert metrics.tasks["clone"].main("test") == 0.74 and metrics.tasks["clone"].lexical_main("test") == 0.88
    assert metrics.tasks["search"].lexical_main("test") is None and metrics.tasks["search"].trivial("test") == 0.02


def test_writing_keeps_the_files_shape(tmp_path):
    path = tmp_path / "metrics.json"
    write_record(path, Metrics.model_validate(METRICS))
    written = json.loads(path.read_text())
    assert written == {"schema_version": SCHEMA_VERSION, **METRICS}  # no field added, none dropped (null kept)


@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m["tasks"]["clone"].update(colour="red"), "tasks.clone.colour: Extra inputs are not permitted"),
    (lambda m: m["tasks"]["clone"].pop("metric"), "tasks.clone.metric: Field required"),
    (lambda m: m.update(schema_version=7), "schema_version: Input should be 1"),
])
def test_a_malformed_file_names_itself_and_the_field(tmp_path, change, message):
    data = json.loads(json.dumps(METRICS))
    change(data)
    path = tmp_path / "metrics.json"
    path.write_text(json.dumps(data))
    with pytest.raises(RunError, match=f"{path}: not a valid metrics file: {message}"):
        read_metrics(path)


def test_unreadable_files_are_errors_not_tracebacks(tmp_path):
    with pytest.raises(RunError, match=r"ledger\.json: missing"):
        read_ledger(tmp_path / "ledger.json")
    (tmp_path / "ledger.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(RunError, match="not a readable JSON file"):
        read_ledger(tmp_path / "ledger.json")
