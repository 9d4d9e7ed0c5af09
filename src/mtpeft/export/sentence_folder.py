"""`mtpeft export RUN --format sentence-transformers --task T`: a retrieval task as a standard sentence-transformers
folder (``modules.json``: the merged transformer, Pooling as the run pools, the task's head as a Dense module, then
Normalize), which ``SentenceTransformer(path).encode(texts)`` opens without mtpeft and which embeds as the run's
retrieval does."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from torch import nn

from mtpeft.errors import ConfigError, ModelError
from mtpeft.export.common import SAMPLE_TEXTS, plain_encoder
from mtpeft.io import atomic_dir
from mtpeft.run.artifacts import TrainedRun
from mtpeft.run.build import input_format
from mtpeft.tasks.spec import TaskKind

POOLING = {"mean": "mean", "cls": "cls", "last": "lasttoken"}  # mtpeft's pooling -> sentence-transformers' mode
COSINE_TOLERANCE = 1e-5


def export_sentence_transformers(trained: TrainedRun, task: str, out: Path) -> Path:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.models import Dense, Normalize, Pooling, Transformer

    config, built = trained.config, trained.built
    model = built.model
    kind = model.kinds[task]
    if kind is not TaskKind.RETRIEVAL:
        retrieval = [t for t, k in model.kinds.items() if k is TaskKind.RETRIEVAL]
        raise ConfigError(f"--format sentence-transformers: task {task!r} is a {kind} task; the folder holds a "
                          f"retrieval task's embeddings (this run's: {', '.join(retrieval) or 'none'})")
    if model.pooling not in POOLING:
        raise ConfigError(f"--format sentence-transformers: the run pools with {model.pooling!r} (the backbone's own "
                          f"pooler), which sentence-transformers' Pooling does not offer ({', '.join(POOLING)})")
    if input_format(config, task).windows:
        raise ConfigError(f"--format sentence-transformers: task {task!r} reads long inputs as windows "
                          "(long_inputs: windows), which sentence-transformers does not; it would embed other vectors")
    encoder = plain_encoder(model, config.method, "sentence-transformers")
    head = model.heads[task]
    with atomic_dir(out) as staging:
        transformer_dir = staging / ".transformer"
        encoder.save_pretrained(transformer_dir)
        built.backbone.tokenizer.save_pretrained(transformer_dir)
        dense = Dense(head.proj.in_features, head.proj.out_features, bias=True, activation_function=nn.Identity(),
                      init_weight=head.proj.weight.detach().clone(), init_bias=head.proj.bias.detach().clone())
        folder = SentenceTransformer(modules=[
            Transformer(str(transformer_dir), max_seq_length=config.train.max_length),
            Pooling(encoder.config.hidden_size, pooling_mode=POOLING[model.pooling]), dense, Normalize()],
            device="cpu")
        check_embeddings(folder, model, task, built.backbone.tokenizer, built.pad_id, config.train.max_length)
        folder.save(str(staging))
        shutil.rmtree(transformer_dir)
    return out


def check_embeddings(folder: object, model: nn.Module, task: str, tokenizer: object, pad_id: int,
                     max_length: int) -> None:
    """The folder embeds sample texts as the run does (cosine within :data:`COSINE_TOLERANCE`), or nothing lands."""
    from mtpeft.data.collate import Rows
    from mtpeft.data.encode import tokenize

    texts = SAMPLE_TEXTS
    got = torch.from_numpy(folder.encode(texts, convert_to_numpy=True))  # type: ignore[attr-defined]
    rows = Rows.pack([[ids] for ids in tokenize(tokenizer, texts, max_length)], pad_id)
    with torch.no_grad():
        expected = model.embed(task, rows.ids, rows.mask, rows.owner, len(texts)).float()  # type: ignore[operator]
    worst = float(1 - torch.nn.functional.cosine_similarity(got, expected).min())
    if not worst <= COSINE_TOLERANCE:
        raise ModelError(f"the sentence-transformers folder embeds differently from the run (cosine off by "
                         f"{worst:.2g}, tolerance {COSINE_TOLERANCE})")
