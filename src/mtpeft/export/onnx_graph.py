"""`mtpeft export RUN --format onnx`: ONE ONNX graph that answers every task of a run in one backbone pass.

The graph is :meth:`MultiTaskModel.forward_mixed` made traceable: the encoder (the shared module merged into it
where the method allows, else as it runs) over every row, each input's rows pooled by every window pooling a
task uses, then every head over every input: a logit per input for classification tasks, an embedding per
input for retrieval tasks, and a logit per given pair for siamese pair tasks. A client asks ONNX Runtime only
for the outputs it needs, and ONNX Runtime runs only the heads those need. The manifest beside it
(:mod:`mtpeft.export.manifest`) says how each task's inputs are fed and its output is read.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mtpeft.config import RunConfig
from mtpeft.data.collate import Rows
from mtpeft.data.encode import Windowing, pair_separator
from mtpeft.errors import ModelError
from mtpeft.evaluate.outputs import DEFAULT_THRESHOLD
from mtpeft.export.common import SAMPLE_TEXTS
from mtpeft.export.manifest import (
    ATTENTION_MASK,
    GRAPHS,
    INPUT_IDS,
    MANIFEST,
    PAIRS,
    WINDOWS,
    OnnxManifest,
    TaskEntry,
    WindowFeed,
    output_name,
)
from mtpeft.export.quantize import quantize_int8
from mtpeft.io import atomic_dir, write_json
from mtpeft.methods import can_merge
from mtpeft.models.multitask import MultiTaskModel
from mtpeft.run.build import Assembled, input_format
from mtpeft.tasks.spec import TaskKind

TOLERANCE = 1e-4  # largest |ONNX Runtime - PyTorch| on a logit or embedding the export accepts


class ServingGraph(nn.Module):
    """``forward_mixed`` with every head over every input, in operations ``torch.export`` can trace.

    Inputs: ``input_ids`` and ``attention_mask`` ``(rows, sequence)``; with windowed tasks, ``windows``
    ``(inputs, rows)``, 1 where a row is a window of an input (else every row is one input); with siamese pair
    tasks, ``pairs`` ``(pairs, 2)``, the two inputs of each pair.
    """

    def __init__(self, model: MultiTaskModel, tasks: list[str], windowed: bool) -> None:
        super().__init__()
        self.model, self.tasks, self.windowed = model, tasks, windowed
        self.siamese = any(model.options[t].siamese for t in tasks)
        self.modes = sorted({model.options[t].window_pooling for t in tasks})

    @property
    def input_names(self) -> list[str]:
        return [INPUT_IDS, ATTENTION_MASK] + [WINDOWS] * self.windowed + [PAIRS] * self.siamese

    @property
    def output_names(self) -> list[str]:
        return [output_name(t, self.model.kinds[t] is TaskKind.RETRIEVAL) for t in self.tasks]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, windows: torch.Tensor | None = None,
                pairs: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        rows = self.model.encode(input_ids, attention_mask)
        pooled = {mode: rows if windows is None else pool_members(mode, rows, windows) for mode in self.modes}
        outputs = []
        for task in self.tasks:
            vectors, head = pooled[self.model.options[task].window_pooling], self.model.heads[task]
            if self.model.options[task].siamese:
                assert pairs is not None
                outputs.append(head(vectors[pairs[:, 0]], vectors[pairs[:, 1]]))
            else:
                outputs.append(head(vectors))
        return tuple(outputs)


def pool_members(mode: str, rows: torch.Tensor, windows: torch.Tensor) -> torch.Tensor:
    """:func:`~mtpeft.models.pooling.pool_windows` with the owners as a 0/1 matrix ``(inputs, rows)``: the
    same max or mean, without the scatter whose output size depends on the data."""
    members = windows.to(rows.dtype)
    if mode == "mean":
        return (members @ rows) / members.sum(1, keepdim=True).clamp(min=1.0)
    lowest = torch.finfo(rows.dtype).min
    return torch.where(members[:, :, None] > 0, rows[None], lowest).amax(1)


def export_onnx(config: RunConfig, built: Assembled, thresholds: dict[str, float], heads_sha256: str, out: Path,
                quantize: str | None = None) -> Path:
    """Write the graph (``model.onnx``, and ``model.int8.onnx`` with ``quantize="int8"``), the tokenizer files and
    the manifest into ``out``, all at once; the graph is checked against the PyTorch model before anything lands.
    ``heads_sha256`` identifies the training exported (the run's ``heads.safetensors``)."""
    model = built.model.eval()
    merged = can_merge(model.encoder, config.method)
    if merged:
        model.encoder = model.encoder.merge_and_unload()
    # The graph always passes the mask: a causal encoder's outputs on right-padded rows are the same with it
    # (MultiTaskModel.attention_mask_for), and the check that skips it is a branch on data, which cannot be traced.
    model.causal = False
    tasks = [t for t, kind in model.kinds.items() if kind is not TaskKind.GENERATION]
    formats = {t: input_format(config, t) for t in tasks}
    tokenizer = built.backbone.tokenizer
    graph = ServingGraph(model, tasks, windowed=any(f.windows for f in formats.values()))
    with atomic_dir(out) as staging:
        onnx_path = staging / GRAPHS["fp32"]
        opset = _trace(graph, sample_inputs(graph, tokenizer, built.pad_id, SAMPLE_TEXTS[:4]), onnx_path,
                       f"{config.model} with {config.method}")
        check_graph(graph, onnx_path, sample_inputs(graph, tokenizer, built.pad_id, SAMPLE_TEXTS))
        tokenizer.save_pretrained(staging)
        quantization = quantize_int8(onnx_path, staging / GRAPHS["int8"]) if quantize == "int8" else None
        entries = {t: task_entry(model, t, formats[t].windowing(tokenizer, config.train.max_length),
                                 formats[t].siamese, thresholds.get(t, DEFAULT_THRESHOLD),
                                 pair_separator(tokenizer), config.train.max_length, built.tasks[t].spec.metric)
                   for t in tasks}
        manifest = OnnxManifest(
            run=config.name, model=config.model, method=config.method, merged=merged,
            heads_sha256=heads_sha256, opset=opset,
            graphs={p: f for p, f in GRAPHS.items() if (staging / f).is_file()},
            inputs=_input_docs(graph, built.pad_id), pad_id=built.pad_id, max_length=config.train.max_length,
            tasks=entries, quantization=quantization,
            not_exported={t: "a generation task decodes token by token, outside one pass; use `mtpeft predict`"
                          for t, kind in model.kinds.items() if kind is TaskKind.GENERATION})
        write_json(staging / MANIFEST, manifest.model_dump(mode="json"))
    return out


def sample_inputs(graph: ServingGraph, tokenizer: Any, pad_id: int, texts: list[str]) -> dict[str, torch.Tensor]:
    """Graph inputs for ``texts``: real token ids, padded; with windows, the last text cut into two; with pairs,
    two pairs."""
    per_input = [[ids] for ids in tokenizer(texts, truncation=True, max_length=32)["input_ids"]]
    if graph.windowed:
        last = per_input[-1][0]
        per_input[-1] = [last[: len(last) // 2 + 1], last[len(last) // 2:]]
    rows = Rows.pack(per_input, pad_id)
    inputs = {INPUT_IDS: rows.ids, ATTENTION_MASK: rows.mask}
    if graph.windowed:
        assert rows.owner is not None
        inputs[WINDOWS] = (rows.owner[None, :] == torch.arange(len(per_input))[:, None]).long()
    if graph.siamese:
        inputs[PAIRS] = torch.tensor([[0, 1], [len(per_input) - 1, 0]])
    return inputs


@contextmanager
def _quiet_exporter() -> Any:
    """torch.onnx logs each of its steps and warns about optional packages it does not need here."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _trace(graph: ServingGraph, inputs: dict[str, torch.Tensor], path: Path, what: str) -> int:
    """Export with ``torch.onnx`` (``torch.export`` underneath, dynamo=True): rows, sequence, inputs and pairs
    are dynamic axes. Returns the opset."""
    rows, sequence = torch.export.Dim("rows"), torch.export.Dim("sequence")
    axes = {INPUT_IDS: {0: rows, 1: sequence}, ATTENTION_MASK: {0: rows, 1: sequence},
            WINDOWS: {0: torch.export.Dim("inputs"), 1: rows}, PAIRS: {0: torch.export.Dim("pairs")}}
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(graph, (), kwargs=inputs, dynamic_shapes={k: axes[k] for k in inputs},
                                        input_names=list(inputs), output_names=graph.output_names, dynamo=True,
                                        verbose=False)
    except Exception as err:  # the exporter's errors are long; the first line says what failed
        raise ModelError(f"torch.onnx could not export {what}: {str(err).strip().splitlines()[0]}") from err
    assert program is not None
    program.save(path)
    return int(next(o.version for o in program.model_proto.opset_import if o.domain in ("", "ai.onnx")))


def check_graph(graph: ServingGraph, path: Path, inputs: dict[str, torch.Tensor]) -> None:
    """ONNX Runtime's outputs on inputs of other sizes than the traced ones equal PyTorch's (within
    :data:`TOLERANCE`): a graph that specialised on its example shapes, or an operator that lost precision,
    is refused before it is written."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(graph.output_names, {k: v.numpy() for k, v in inputs.items()})
    with torch.no_grad():
        expected = graph(**inputs)
    for name, a, b in zip(graph.output_names, got, expected, strict=True):
        diff = float((torch.from_numpy(a) - b.float()).abs().max())
        if not diff <= TOLERANCE:
            raise ModelError(f"the exported graph's output {name!r} differs from PyTorch's by {diff:.2g} "
                             f"(tolerance {TOLERANCE}); this model does not export faithfully")


def task_entry(model: MultiTaskModel, task: str, windowing: Windowing | None, siamese: bool,
               threshold: float, separator: str, max_length: int, metric: str) -> TaskEntry:
    """How a client feeds one task and reads its answer, in words and numbers."""
    kind = model.kinds[task]
    one = (f"tokenizer(text, add_special_tokens=False, truncation=True, max_length={windowing.coverage}), cut into "
           "windows (see windows); each window is a row, and `windows` marks an input's rows"
           if windowing else f"tokenizer(text, truncation='longest_first', max_length={max_length}): one row")
    output = output_name(task, kind is TaskKind.RETRIEVAL)
    if kind is TaskKind.RETRIEVAL:
        feed, answer = (f"a query or a code is one input: {one}",
                        f"{output}[i] is input i's L2-normalised embedding; a code's score for a query is their dot "
                        "product (cosine); rank codes by it, best first")
    elif kind is TaskKind.PAIR and siamese:
        feed, answer = (f"code1 and code2 are two inputs, each {one}; put [input of code1, input of code2] in `pairs`",
                        f"probability = sigmoid({output}[p]) for pair p; label = probability >= threshold")
    else:
        second = f"{separator!r} + code2" if separator else "code2"
        pair = (f"code1 and code2 as ONE row: tokenizer(code1, {second}, truncation='longest_first', "
                f"max_length={max_length})")
        feed = pair if kind is TaskKind.PAIR else f"code is one input: {one}"
        answer = f"probability = sigmoid({output}[i]) for input i; label = probability >= threshold"
    windows = None if windowing is None else WindowFeed(
        content=windowing.content, stride=windowing.stride, max_windows=windowing.max_windows,
        prefix=list(windowing.prefix), suffix=list(windowing.suffix), pooling=model.options[task].window_pooling)
    is_pair = kind is TaskKind.PAIR
    return TaskEntry(kind=str(kind), metric=metric, output=output, feed=feed, answer=answer, windows=windows,
                     threshold=None if kind is TaskKind.RETRIEVAL else threshold,
                     pair_encoding=("siamese" if siamese else "joint") if is_pair else None,
                     pair_separator=separator if is_pair and not siamese else None)


def _input_docs(graph: ServingGraph, pad_id: int) -> dict[str, str]:
    docs = {INPUT_IDS: f"int64 (rows, sequence): token ids, right-padded with pad_id {pad_id}",
            ATTENTION_MASK: "int64 (rows, sequence): 1 on tokens, 0 on padding",
            WINDOWS: "int64 (inputs, rows): windows[i, r] = 1 where row r is a window of input i (each row its own "
                     "input: the identity)",
            PAIRS: "int64 (pairs, 2): the two inputs of each pair of a siamese pair task (may be empty)"}
    return {name: docs[name] for name in graph.input_names}
