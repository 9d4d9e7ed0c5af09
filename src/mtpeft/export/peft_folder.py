"""`mtpeft export RUN --format peft --task T`: one classification task as a folder that peft's
``AutoPeftModelForSequenceClassification`` loads (``trust_remote_code=True``), without mtpeft.

The run's head (pooling, then ``Linear(h, h/2) -> ReLU -> Dropout -> Linear(h/2, 1)``) is not any of transformers'
sequence-classification heads (BERT's is one ``Linear`` over a tanh pooler, RoBERTa's a tanh MLP over ``<s>``), so
mapping it onto one would change the model's answers. The folder therefore ships the head as code: it is at the
same time the base model (``config.json`` whose ``auto_map`` names ``modeling_mtpeft.py``, the backbone's
pretrained weights, the tokenizer) and the adapter (``adapter_config.json``: the run's adapter, task type
``SEQ_CLS``, ``modules_to_save: ["classifier"]``; ``adapter_model.safetensors``: its weights and the task's head).
Only LoRA and IA3 runs qualify: prefix and prompt tuning run inside peft's own forward, whose sequence-classification
path pools over the virtual tokens too, and mtpeft's bottleneck adapters are not peft adapters.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch

from mtpeft.data.collate import Rows
from mtpeft.data.encode import tokenize
from mtpeft.errors import ConfigError, ModelError
from mtpeft.export.common import SAMPLE_TEXTS
from mtpeft.io import atomic_dir, write_json
from mtpeft.methods import METHODS, can_merge, methods_where
from mtpeft.run.artifacts import TrainedRun
from mtpeft.run.build import input_format
from mtpeft.tasks.spec import TaskKind

BASE = "base"  # the base model's folder inside the export (one folder cannot be both: transformers would load
# the adapter in place of a base model it finds beside an adapter_config.json)
MODELING = "modeling_mtpeft"
CLASS = "MtpeftForSequenceClassification"
TOLERANCE = 1e-5  # on the logit


def export_peft(trained: TrainedRun, task: str, out: Path) -> Path:
    from peft import get_peft_model, get_peft_model_state_dict, set_peft_model_state_dict

    config, built = trained.config, trained.built
    model = built.model
    check_task(trained, task)
    sample = Rows.pack([[ids] for ids in tokenize(built.backbone.tokenizer, SAMPLE_TEXTS, config.train.max_length)],
                       built.pad_id)
    with torch.no_grad():
        expected = model.heads[task](model.encode(sample.ids, sample.mask))
    encoder = model.encoder
    adapter = get_peft_model_state_dict(encoder)
    peft_config = dataclasses.replace(encoder.peft_config["default"], task_type="SEQ_CLS",
                                      modules_to_save=["classifier"], inference_mode=True)
    backbone = encoder.unload()  # the pretrained weights, the adapter taken out (its weights are in `adapter`)
    with atomic_dir(out) as staging:
        base = staging / BASE
        classifier = _model_class(base, backbone.config)(_head_config(backbone.config, model.pooling,
                                                                      config.head_dropout))
        classifier.backbone.load_state_dict(backbone.state_dict())
        classifier.classifier.load_state_dict(model.heads[task].net.state_dict())
        classifier.save_pretrained(base)
        for folder in (base, staging):
            built.backbone.tokenizer.save_pretrained(folder)
        adapted = get_peft_model(classifier, peft_config)
        weights = {k.replace("base_model.model.", "base_model.model.backbone.", 1): v for k, v in adapter.items()}
        weights.update({f"base_model.model.classifier.{k}": v for k, v in model.heads[task].net.state_dict().items()})
        if set_peft_model_state_dict(adapted, weights).unexpected_keys:
            raise ModelError(f"the {config.method} weights do not fit the exported model; cannot export")
        adapted.save_pretrained(staging)
        config_file = staging / "adapter_config.json"
        # where AutoPeftModel finds the base: this folder's base/ (an absolute path, as peft stores it); peft's
        # sequence-classification model lists its default head names beside ours, repeated
        written = json.loads(config_file.read_text(encoding="utf-8"))
        write_json(config_file, {**written, "base_model_name_or_path": str((out / BASE).resolve()),
                                 "modules_to_save": ["classifier"]})
        check_logits(staging, sample, expected)
    return out


def check_task(trained: TrainedRun, task: str) -> None:
    """Only what one sequence-classification pass computes exactly: a binary task or a jointly encoded pair, on
    truncated inputs, adapted by a peft method that changes layers (LoRA, IA3)."""
    config, model = trained.config, trained.built.model
    kind, fmt = model.kinds[task], input_format(config, task)
    if kind is TaskKind.RETRIEVAL:
        raise ConfigError(f"--format peft: task {task!r} is a retrieval task (embeddings, not a class); use "
                          "--format sentence-transformers or onnx")
    if kind is TaskKind.GENERATION:
        raise ConfigError(f"--format peft: task {task!r} is a generation task; the run's adapter/ opens with "
                          "peft.PeftModel.from_pretrained for generation")
    if fmt.siamese:
        raise ConfigError(f"--format peft: task {task!r} is a siamese pair task (each code encoded alone, the head "
                          "over [u, v, |u-v|, u*v]), and a sequence-classification model reads ONE sequence; use "
                          "--format onnx")
    if fmt.windows:
        raise ConfigError(f"--format peft: task {task!r} reads long inputs as windows pooled into one vector; a "
                          "sequence-classification model reads one truncated sequence; use --format onnx")
    if model.seq2seq:
        raise ConfigError("--format peft: the run has generation tasks, so its backbone is a whole encoder-decoder; "
                          "export a run without them")
    if not can_merge(model.encoder, config.method):
        peft_methods = ", ".join(methods_where("mergeable"))
        what = "has no adapter" if METHODS.get(config.method).storage == "model" else "is not exact there"
        raise ConfigError(f"--format peft: a {config.method!r} run {what}; the folder holds {peft_methods} runs "
                          "(use --format onnx, which exports any method)")


def _head_config(backbone_config: Any, pooling: str, dropout: float) -> Any:
    head = backbone_config.__class__.from_dict(backbone_config.to_dict())
    head.architectures = [CLASS]
    head.auto_map = {"AutoModelForSequenceClassification": f"{MODELING}.{CLASS}"}
    head.num_labels = 1
    head.mtpeft_head = {"pooling": pooling, "dropout": dropout,
                        "layers": "Linear(h, h/2) -> ReLU -> Dropout -> Linear(h/2, 1)"}
    return head


def _model_class(folder: Path, backbone_config: Any) -> Any:
    """Write ``modeling_mtpeft.py`` for the backbone's config class into ``folder`` and import it from there."""
    import transformers

    name = type(backbone_config).__name__
    if not hasattr(transformers, name):
        raise ConfigError(f"--format peft: transformers does not export {name}, which the folder's code would import")
    source = files("mtpeft.export").joinpath("templates", f"{MODELING}.txt").read_text(encoding="utf-8")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{MODELING}.py"
    path.write_text(source.replace("{config_class}", name), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(f"_mtpeft_export_{MODELING}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, CLASS)


def check_logits(folder: Path, sample: Rows, expected: torch.Tensor) -> None:
    """The folder, opened as a user opens it (transformers + peft only), gives the run's logits on ``sample``."""
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    base = AutoModelForSequenceClassification.from_pretrained(folder / BASE, trust_remote_code=True)
    with torch.no_grad():
        got = PeftModel.from_pretrained(base, folder).eval()(input_ids=sample.ids, attention_mask=sample.mask).logits
    worst = float((got.squeeze(-1) - expected).abs().max())
    if not worst <= TOLERANCE:
        raise ModelError(f"the peft folder's logits differ from the run's by {worst:.2g} (tolerance {TOLERANCE})")
    shutil.rmtree(folder / BASE / "__pycache__", ignore_errors=True)  # left by importing modeling_mtpeft.py
