"""An ONNX export run by ONNX Runtime behind the inference methods of :class:`MultiTaskModel`.

``forward_mixed`` and ``embed`` (what the predictor calls), ``forward(task, batch)`` and ``embedding_dim`` (what
evaluation calls), so `mtpeft predict`, `mtpeft serve` and `mtpeft eval` run the graph through the code paths they
run the PyTorch model through: same tokens, same batches, same answers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mtpeft.data.collate import Batch, pad
from mtpeft.errors import ConfigError, RunError
from mtpeft.export.common import require
from mtpeft.export.formats import export_dir
from mtpeft.export.manifest import ATTENTION_MASK, INPUT_IDS, PAIRS, WINDOWS, OnnxManifest, file_sha256, read_manifest

BACKENDS = {"torch": None, "onnx": "fp32", "onnx-int8": "int8"}  # backend -> precision of the ONNX graph


def onnx_backend(run_dir: Path, backend: str) -> OnnxTaskModel | None:
    """The run's ONNX export for ``backend`` (``onnx``, ``onnx-int8``), checked against the run; None for ``torch``."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: expected one of {', '.join(BACKENDS)}")
    precision = BACKENDS[backend]
    if precision is None:
        return None
    require("onnxruntime")
    model = OnnxTaskModel(export_dir(run_dir, "onnx"), precision)
    if file_sha256(run_dir / "heads.safetensors") != model.manifest.heads_sha256:
        raise RunError(f"{run_dir}: the run was trained again after its ONNX export (heads.safetensors changed); "
                       f"export again with `mtpeft export {run_dir} --format onnx`")
    return model


class OnnxTaskModel(nn.Module):
    """The graph of ``folder`` at ``precision`` (``fp32`` or ``int8``) in an ONNX Runtime session.

    An ``nn.Module`` without parameters, so code written for the PyTorch model (``eval()``, ``.to(device)``)
    runs unchanged; ONNX Runtime picks its own threads and runs on the CPU unless it was built for more.
    """

    def __init__(self, folder: Path, precision: str = "fp32") -> None:
        import onnxruntime

        super().__init__()
        self.manifest: OnnxManifest = read_manifest(folder)
        if precision not in self.manifest.graphs:
            extra = " --quantize int8" if precision == "int8" else ""
            raise RunError(f"{folder}: the export has no {precision} graph (it has "
                           f"{', '.join(self.manifest.graphs)}); export again with `--format onnx{extra}`")
        self.precision = precision
        self.session = onnxruntime.InferenceSession(str(folder / self.manifest.graphs[precision]),
                                                    providers=onnxruntime.get_available_providers())
        self.input_names = {i.name for i in self.session.get_inputs()}
        self.dims = {o.name: o.shape[-1] for o in self.session.get_outputs()}
        self.siamese = {t for t, e in self.manifest.tasks.items() if e.pair_encoding == "siamese"}

    def embedding_dim(self, task: str) -> int:
        return int(self.dims[self.manifest.tasks[task].output])

    def forward_mixed(self, tasks: list[str], input_ids: torch.Tensor, attention_mask: torch.Tensor,
                      owner: torch.Tensor, inputs: list[list[int]]) -> list[torch.Tensor]:
        """Per item, its task's logit ``()`` or embedding ``(dim,)``: the contract of
        :meth:`MultiTaskModel.forward_mixed`, in one run of the graph."""
        siamese = [k for k, task in enumerate(tasks) if task in self.siamese]
        pair_of = {k: p for p, k in enumerate(siamese)}
        wanted = list(dict.fromkeys(self.manifest.tasks[t].output for t in tasks))
        results = self._run(wanted, input_ids, attention_mask, owner, sum(map(len, inputs)),
                            [inputs[k] for k in siamese])
        outputs = {name: torch.from_numpy(result) for name, result in zip(wanted, results, strict=True)}
        return [outputs[self.manifest.tasks[task].output][pair_of.get(k, inputs[k][0])]
                for k, task in enumerate(tasks)]

    def embed(self, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              owner: torch.Tensor | None = None, count: int = 0) -> torch.Tensor:
        name = self.manifest.tasks[task].output
        return torch.from_numpy(self._run([name], input_ids, attention_mask, owner, count or len(input_ids))[0])

    def forward(self, task: str, batch: Batch) -> dict[str, torch.Tensor]:
        """``{"logits"}`` of a classification batch, as :meth:`MultiTaskModel.forward` gives them."""
        name, count = self.manifest.tasks[task].output, len(batch)
        if batch.pair_input_ids is None:
            return {"logits": torch.from_numpy(self._run([name], batch.input_ids, batch.attention_mask, batch.owner,
                                                         count)[0])}
        # a siamese pair: both sides' rows in one run, side 2's inputs numbered after side 1's
        assert batch.pair_attention_mask is not None
        rows = [r[m.bool()].tolist() for side in ((batch.input_ids, batch.attention_mask),
                                                  (batch.pair_input_ids, batch.pair_attention_mask))
                for r, m in zip(*side, strict=True)]
        ids, mask = pad(rows, int(self.manifest.pad_id))
        owner = torch.cat([_owner(batch.owner, len(batch.input_ids)),
                           _owner(batch.pair_owner, len(batch.pair_input_ids)) + count])
        pairs = [[k, count + k] for k in range(count)]
        return {"logits": torch.from_numpy(self._run([name], ids, mask, owner, 2 * count, pairs)[0])}

    def _run(self, outputs: list[str], input_ids: torch.Tensor, attention_mask: torch.Tensor,
             owner: torch.Tensor | None, count: int, pairs: list[list[int]] | None = None) -> list[np.ndarray]:
        feeds: dict[str, Any] = {INPUT_IDS: input_ids.cpu().numpy().astype(np.int64),
                                 ATTENTION_MASK: attention_mask.cpu().numpy().astype(np.int64)}
        if WINDOWS in self.input_names:
            rows = _owner(owner, len(input_ids)).cpu().numpy()
            feeds[WINDOWS] = (rows[None, :] == np.arange(count)[:, None]).astype(np.int64)
        if PAIRS in self.input_names:
            feeds[PAIRS] = np.asarray(pairs or [], dtype=np.int64).reshape(-1, 2)
        return self.session.run(outputs, feeds)


def _owner(owner: torch.Tensor | None, rows: int) -> torch.Tensor:
    """The input of each row; none given: every row is its own input."""
    return torch.arange(rows) if owner is None else owner.cpu()
