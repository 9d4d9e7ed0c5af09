"""The sentence-transformers and peft folders load with their own libraries alone (in a fresh interpreter that
never imports mtpeft) and give the run's embeddings and probabilities; tasks they cannot hold are refused by kind."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from mtpeft.errors import ConfigError, ModelError
from mtpeft.export import export_run
from mtpeft.serve.schemas import CodeInput
from tests.serve.conftest import binary_rows, search_rows

pytestmark = pytest.mark.slow


def without_mtpeft(script: str, *args: str) -> dict:
    """Run ``script`` in an isolated interpreter (-I: no PYTHONPATH, no current folder); it prints JSON and whether
    anything imported mtpeft."""
    code = f"import json, sys\n{script}\nprint(json.dumps({{**out, 'mtpeft': 'mtpeft' in sys.modules}}))"
    done = subprocess.run([sys.executable, "-I", "-c", code, *args], capture_output=True, text=True, timeout=600,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


ENCODE = """
from sentence_transformers import SentenceTransformer
model = SentenceTransformer(sys.argv[1], device="cpu")
out = {"vectors": model.encode(json.loads(sys.argv[2])).tolist()}
"""

CLASSIFY = """
import torch
from peft import AutoPeftModelForSequenceClassification
from transformers import AutoTokenizer
model = AutoPeftModelForSequenceClassification.from_pretrained(sys.argv[1], trust_remote_code=True).eval()
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
batch = tokenizer(json.loads(sys.argv[2]), truncation=True, max_length=int(sys.argv[3]), padding=True,
                  return_tensors="pt")
with torch.no_grad():
    out = {"probabilities": torch.sigmoid(model(**batch).logits.squeeze(-1)).tolist()}
"""


def test_the_sentence_transformers_folder_embeds_as_the_run_retrieves(tiny_run, predictor):
    folder = export_run(tiny_run, "sentence-transformers", task="find")
    codes = [r["code"] for r in search_rows(6)] + ["x" * 400]  # the last is cut at max_length alike
    loaded = without_mtpeft(ENCODE, str(folder), json.dumps(codes))
    assert not loaded["mtpeft"]
    got, expected = np.asarray(loaded["vectors"]), predictor.embed_pool(codes, 4)[0]["find"].numpy()
    cosine = (got * expected).sum(1) / np.linalg.norm(got, axis=1) / np.linalg.norm(expected, axis=1)
    assert cosine.min() >= 1 - 1e-5
    assert json.loads((folder / "modules.json").read_text())[-1]["type"].endswith("Normalize")


def test_the_peft_folder_classifies_as_the_run_does(tiny_run, predictor):
    folder = export_run(tiny_run, "peft", task="overflow")
    adapter = json.loads((folder / "adapter_config.json").read_text())
    assert adapter["task_type"] == "SEQ_CLS" and adapter["modules_to_save"] == ["classifier"]
    codes = [r["text"] for r in binary_rows(6)]
    loaded = without_mtpeft(CLASSIFY, str(folder), json.dumps(codes), str(predictor.max_length))
    assert not loaded["mtpeft"]
    items = predictor.encode("overflow", [CodeInput(code=c) for c in codes])
    expected = [predictor.classify(item, out)["probability"] for item, out in zip(items, predictor.forward(items),
                                                                                   strict=True)]
    np.testing.assert_allclose(loaded["probabilities"], expected, atol=1e-5)


@pytest.mark.parametrize(("fmt", "task", "expected"), [
    ("sentence-transformers", "overflow", "task 'overflow' is a binary task; the folder holds a retrieval task"),
    ("peft", "find", "task 'find' is a retrieval task"),
])
def test_a_task_the_format_cannot_hold_is_refused_by_kind(tiny_run, fmt, task, expected):
    with pytest.raises(ConfigError, match=expected):
        export_run(tiny_run, fmt, task=task)


def test_siamese_and_windowed_tasks_are_refused_by_the_peft_folder(windowed_run):
    with pytest.raises(ConfigError, match="siamese pair task"):
        export_run(windowed_run, "peft", task="same")
    with pytest.raises(ConfigError, match="reads long inputs as windows"):
        export_run(windowed_run, "peft", task="overflow")


def test_a_failed_export_leaves_the_destination_as_it_was(tiny_run, tmp_path, monkeypatch):
    import mtpeft.export.sentence_folder as folder

    def differs(*args: object) -> None:
        raise ModelError("embeds differently")

    monkeypatch.setattr(folder, "check_embeddings", differs)
    out = tmp_path / "st"
    with pytest.raises(ModelError, match="embeds differently"):
        export_run(tiny_run, "sentence-transformers", task="find", out=out)
    assert list(tmp_path.iterdir()) == []  # neither the folder nor its staging copy
