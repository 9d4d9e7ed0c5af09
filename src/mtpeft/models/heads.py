"""Task heads (always trainable, never shared), as in the paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtpeft.tasks.spec import TaskKind

RETRIEVAL_DIM = 512
RETRIEVAL_SCALE = 20.0


class ClassificationHead(nn.Module):
    """``Linear(h, h/2) -> ReLU -> Dropout -> Linear(h/2, 1)``: one logit, BCE-with-logits loss."""

    def __init__(self, hidden: int, dropout: float) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, 1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)  # (batch,)

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class RetrievalHead(nn.Module):
    """``Linear(h, 512)`` + L2 normalisation; query and code share it (and the backbone)."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.proj = nn.Linear(hidden, RETRIEVAL_DIM)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(pooled).float(), dim=-1)  # (batch, 512)

    @staticmethod
    def loss(queries: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """In-batch contrastive cross-entropy: scores ``q . c^T * 20``, the answer on the diagonal."""
        scores = queries @ codes.T * RETRIEVAL_SCALE
        return F.cross_entropy(scores, torch.arange(len(queries), device=scores.device))


class GenerationHead(nn.Module):
    """A generation task's head has no weights of its own: every generation task decodes through the
    model's one (shared, pretrained) LM head, told apart by its instruction. It keeps "one head per task"
    true, so that weighting, checkpoints and ``heads.json`` treat every task alike."""


def make_head(kind: TaskKind, hidden: int, dropout: float) -> nn.Module:
    if kind is TaskKind.GENERATION:
        return GenerationHead()
    return RetrievalHead(hidden) if kind is TaskKind.RETRIEVAL else ClassificationHead(hidden, dropout)
