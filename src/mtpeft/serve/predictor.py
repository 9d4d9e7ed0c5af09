"""A finished run loaded once for inference: inputs -> tokens -> ONE backbone pass -> per-task heads.

Used alike by `mtpeft predict`, the HTTP service and the benchmark, so they answer identically. It
reuses training's tokenisation (:func:`~mtpeft.data.encode.tokenize`), padding and the evaluation
runner's embedding code, so its probabilities equal `mtpeft eval`'s on the same inputs.

The backbone pass is the backend's: the run's PyTorch model, or its ONNX export run by ONNX Runtime
(:class:`~mtpeft.export.OnnxTaskModel`, with the same inference methods); tokenising, batching, limits and
answers are the predictor's, whichever computes.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mtpeft.data.collate import Rows
from mtpeft.data.encode import Windowing, encode_inputs, prompt_ids, prompts_cut, tokenize, truncated
from mtpeft.errors import ConfigError
from mtpeft.evaluate.outputs import DEFAULT_THRESHOLD
from mtpeft.evaluate.runner import embed
from mtpeft.export import OnnxTaskModel, onnx_backend
from mtpeft.methods import can_merge, methods_where
from mtpeft.run.artifacts import TrainedRun, load_trained
from mtpeft.run.build import input_format, prompt_format
from mtpeft.run.device import make_accelerator
from mtpeft.serve.schemas import Ident, input_fields, tasks_of
from mtpeft.tasks.spec import TaskKind


@dataclass(frozen=True)
class Encoded:
    """One item as tokens: what the request queue holds. ``inputs`` holds each of its inputs (two for a siamese
    pair) as the rows the encoder reads: one, or one per window."""

    task: str
    inputs: list[list[list[int]]]
    truncated: bool
    ident: Ident | None = None

    @property
    def sizes(self) -> tuple[int, ...]:
        """Tokens of each input (every window counted): what batching by size groups on."""
        return tuple(sum(map(len, rows)) for rows in self.inputs)


class Predictor:
    """Answers inputs of every task of one run with one shared backbone.

    Args:
        trained: the run, as :func:`~mtpeft.run.artifacts.load_trained` rebuilds it.
        merge: fold LoRA/IA3 weights into the base weights (peft ``merge_and_unload``): the same
            outputs without the adapter's extra matmuls.
        onnx: the run's ONNX export, to compute in place of the PyTorch model (CPU, no autocast).
    """

    def __init__(self, trained: TrainedRun, merge: bool = False, onnx: OnnxTaskModel | None = None) -> None:
        config, built = trained.config, trained.built
        self.name, self.model_name = config.name, config.model
        self.model = built.model
        self.tokenizer = built.backbone.tokenizer
        self.pad_id = built.pad_id
        # generation tasks are answered by `generate` (`mtpeft predict`), not by the HTTP service: it answers
        # per item in one backbone pass, which decoding (many passes per item) does not fit
        self.specs = {name: data.spec for name, data in built.tasks.items()
                      if data.spec.kind is not TaskKind.GENERATION}
        self.generation = {name: prompt_format(config, data.spec, built.backbone.seq2seq)
                           for name, data in built.tasks.items() if data.spec.kind is TaskKind.GENERATION}
        self.generator = built.generator(config.train.num_beams)
        self.thresholds = trained.thresholds
        self.max_length = config.train.max_length
        self.formats = {name: input_format(config, name) for name in self.specs}
        # computed once: finding a tokenizer's special tokens tokenises outside the lock (see _tokenize)
        self.windowings = {name: fmt.windowing(self.tokenizer, self.max_length) for name, fmt in self.formats.items()}
        self._tokenizer_lock = threading.Lock()
        if merge:
            self.model.encoder = merge_adapter(self.model.encoder, config.method)
        self.backend = "torch" if onnx is None else f"onnx {onnx.precision}"
        if onnx is not None:
            self.model, self.device, self.autocast, self.precision = onnx, torch.device("cpu"), nullcontext, "no"
        else:
            accelerator = make_accelerator(config)  # the device and autocast `mtpeft eval` would use
            self.device, self.autocast = accelerator.device, accelerator.autocast
            self.precision = str(accelerator.mixed_precision)  # "bf16" (autocast) or "no"
        self.model.to(self.device).eval()

    @classmethod
    def from_run(cls, run_dir: str | Path, merge: bool = False, backend: str = "torch",
                 base_model: str | None = None) -> Predictor:
        """Load a run directory (without its training data, which a deployment need not have); ``backend``
        ``onnx`` / ``onnx-int8`` computes with its export in ``RUN/export/onnx/`` (the run's PyTorch weights
        are still read, to rebuild its tokenizer and tasks, and then dropped); ``base_model``: the base weights'
        folder where the run's record of them does not lead here (:func:`~mtpeft.run.base_model.resolve_base`)."""
        onnx = onnx_backend(Path(run_dir), backend)
        if onnx is not None and merge:
            raise ConfigError("--merge: only for --backend torch; the ONNX graph was merged when it was exported")
        return cls(load_trained(Path(run_dir), with_data=False, base_model=base_model), merge=merge, onnx=onnx)

    def retrieval_tasks(self) -> list[str]:
        return tasks_of(self.specs, TaskKind.RETRIEVAL)

    def check_task(self, task: str) -> TaskKind:
        if task in self.generation:
            raise ConfigError(f"task {task!r} is a generation task, which the HTTP service does not decode; "
                              f"use `mtpeft predict RUN --task {task}` (jsonl of {{\"code\"}} in, generated text out)")
        if task not in self.specs:
            raise ConfigError(f"--task {task!r}: the run has tasks {', '.join(sorted(self.specs))}")
        return self.specs[task].kind

    def encode(self, task: str, inputs: Sequence[Any]) -> list[Encoded]:
        """Tokenise inputs of one task (objects with the kind's fields, see ``schemas.INPUTS``) as the run's
        training did (truncated or windows; a pair joint or siamese); thread-safe."""
        names = input_fields(self.check_task(task))
        fields = [[getattr(x, name) for x in inputs] for name in names]
        if len(fields) == 2 and not self.formats[task].siamese:  # a joint pair: one sequence
            encoded = [self._tokenize(task, fields[0], fields[1])]
        else:
            encoded = [self._tokenize(task, texts) for texts in fields]
        return [Encoded(task, [rows[k] for rows, _ in encoded], any(cut[k] for _, cut in encoded),
                        getattr(x, "id", None)) for k, x in enumerate(inputs)]

    @torch.no_grad()
    def generate(self, task: str, inputs: Sequence[Any], batch_size: int) -> list[dict[str, Any]]:
        """The generated text for each input (objects with ``code`` and an optional ``id``), in order;
        prompted and decoded exactly as the run's evaluation decodes its test split."""
        if task not in self.generation:
            raise ConfigError(f"--task {task!r}: not a generation task of this run "
                              f"(generation tasks: {', '.join(sorted(self.generation)) or 'none'})")
        if self.backend != "torch":
            raise ConfigError(f"--backend {self.backend}: generation tasks decode token by token and are not in the "
                              "ONNX graph; use --backend torch")
        fmt = self.generation[task]
        texts = [x.code for x in inputs]
        with self._tokenizer_lock:
            prompts = prompt_ids(self.tokenizer, texts, self.max_length, fmt.instruction)
            cut = prompts_cut(self.tokenizer, texts, prompts, fmt.instruction, self.max_length)
        with self.autocast():
            written = self.generator.generate(prompts, fmt.max_target_length, batch_size, self.device)
        return [answer_row(Encoded(task, [[ids]], flag, getattr(x, "id", None)), text=text)
                for ids, flag, x, text in zip(prompts, cut, inputs, written, strict=True)]

    def encode_mixed(self, items: Sequence[Any]) -> list[Encoded]:
        """Tokenise items that each name their ``task``, keeping their order."""
        out: dict[int, Encoded] = {}
        for task in dict.fromkeys(item.task for item in items):
            rows = [i for i, item in enumerate(items) if item.task == task]
            out.update(zip(rows, self.encode(task, [items[i] for i in rows]), strict=True))
        return [out[i] for i in range(len(items))]

    @torch.no_grad()
    def forward(self, items: list[Encoded]) -> list[torch.Tensor]:
        """ONE backbone pass over items of any tasks; per item, its head's logit or embedding (on the CPU)."""
        every_input = [rows for item in items for rows in item.inputs]
        packed = Rows.pack(every_input, self.pad_id)
        numbered = iter(range(len(every_input)))
        inputs = [[next(numbered) for _ in item.inputs] for item in items]
        with self.autocast():
            outputs = self.model.forward_mixed([item.task for item in items], packed.ids.to(self.device),
                                               packed.mask.to(self.device), packed.owner, inputs)
        return [out.float().cpu() for out in outputs]

    def classify(self, item: Encoded, logit: torch.Tensor) -> dict[str, Any]:
        """The answer to one classification item: the run's tuned threshold decides the label."""
        probability = float(torch.sigmoid(logit))
        threshold = self.thresholds.get(item.task, DEFAULT_THRESHOLD)
        return answer_row(item, label=int(probability >= threshold), probability=probability)

    def embed_pool(self, codes: list[str], batch_size: int) -> tuple[dict[str, torch.Tensor], list[bool]]:
        """Pool embeddings per retrieval task ``{task: (len(codes), dim)}``, and which codes some task cut."""
        vectors, cut = {}, [False] * len(codes)
        tokenised: dict[Windowing | None, tuple[list[list[list[int]]], list[bool]]] = {}
        for task in self.retrieval_tasks():
            windowing = self.windowings[task]
            if windowing not in tokenised:  # tasks that read inputs alike share one tokenisation of the pool
                tokenised[windowing] = self._tokenize(task, codes)
            rows, task_cut = tokenised[windowing]
            cut = [a or b for a, b in zip(cut, task_cut, strict=True)]
            with self.autocast():
                vectors[task] = embed(self.model, task, rows, self.pad_id, batch_size, self.device)
        return vectors, cut

    def _tokenize(self, task: str, texts: list[str], pairs: list[str] | None = None,
                  ) -> tuple[list[list[list[int]]], list[bool]]:
        """Per text, its rows as ``task`` reads them, and whether any of it was cut."""
        windowing = self.windowings[task]
        # A fast tokenizer keeps its truncation setting as shared state, and `truncated` switches it off for a
        # moment: two threads tokenising at once could get untruncated ids. The server tokenises in threads.
        with self._tokenizer_lock:
            ids = tokenize(self.tokenizer, texts, self.max_length, pairs) if pairs is not None else encode_inputs(
                self.tokenizer, texts, self.max_length, windowing)
            cut = truncated(self.tokenizer, texts, ids, self.max_length, pairs, windowing)
        return [windowing.split(row) if windowing else [row] for row in ids], cut


def answer_row(item: Encoded, **fields: Any) -> dict[str, Any]:
    """``{id (when given), task, **fields, truncated}``: the shape of every answer, CLI and HTTP alike."""
    head = {"id": item.ident} if item.ident is not None else {}
    return {**head, "task": item.task, **fields, "truncated": item.truncated}


def merge_adapter(encoder: nn.Module, method: str) -> nn.Module:
    """The encoder with its adapter folded into the base weights (no adapter layers left)."""
    if not can_merge(encoder, method):
        raise ConfigError(f"--merge: a {method!r} run cannot be merged into the base weights (only "
                          f"{', '.join(methods_where('mergeable'))} can); serve it without --merge")
    return encoder.merge_and_unload()
