"""Task heads (always trainable, never shared), as in the paper."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mtpeft.tasks.spec import TaskKind

RETRIEVAL_DIM = 512
RETRIEVAL_SCALE = 20.0


class ClassificationHead(nn.Module):
    """``Linear(h, h/2) -> ReLU -> Dropout -> Linear(h/2, 1)``: one logit, BCE-with-logits loss (optionally with
    a weight on positives, or focal), as in the paper."""

    def __init__(self, hidden: int, dropout: float, pos_weight: float | None = None,
                 focal_gamma: float | None = None, inputs: int = 1) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(inputs * hidden, hidden // 2), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden // 2, 1))
        self.focal_gamma = focal_gamma
        # a buffer follows the head to its device; not persistent: a loss setting, not a weight to store
        self.register_buffer("pos_weight", None if pos_weight is None else torch.tensor(float(pos_weight)),
                             persistent=False)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)  # (batch,)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return binary_loss(logits, labels, self.pos_weight, self.focal_gamma)


class SiameseHead(ClassificationHead):
    """A pair whose inputs were encoded apart: the classification head over ``[u, v, |u - v|, u * v]`` (the
    sentence-pair features of InferSent and Sentence-BERT), which does not depend on the pair's order in its
    last two parts."""

    def __init__(self, hidden: int, dropout: float, pos_weight: float | None = None,
                 focal_gamma: float | None = None) -> None:
        super().__init__(hidden, dropout, pos_weight, focal_gamma, inputs=4)

    def forward(self, first: torch.Tensor, second: torch.Tensor | None = None) -> torch.Tensor:  # type: ignore[override]
        if second is None:
            raise ValueError("a siamese pair head reads two inputs")
        return self.net(torch.cat([first, second, (first - second).abs(), first * second], dim=-1)).squeeze(-1)


def binary_loss(logits: torch.Tensor, labels: torch.Tensor, pos_weight: float | torch.Tensor | None = None,
                focal_gamma: float | None = None) -> torch.Tensor:
    """Mean binary cross-entropy over the batch; ``pos_weight`` multiplies the positives' terms, and
    ``focal_gamma`` scales every term by ``(1 - p_t) ** gamma`` (focal loss, Lin et al. 2017), where ``p_t`` is
    the probability given to the true label.

    Example:
        >>> logits, labels = torch.tensor([2.0, -1.0]), torch.tensor([1.0, 1.0])
        >>> round(float(binary_loss(logits, labels)), 4), round(float(binary_loss(logits, labels, 3.0)), 4)
        (0.7201, 2.1603)
    """
    logits, labels = logits.float(), labels.float()
    weight = None if pos_weight is None else torch.as_tensor(pos_weight, device=logits.device)
    terms = F.binary_cross_entropy_with_logits(logits, labels, pos_weight=weight, reduction="none")
    if focal_gamma:
        p = torch.sigmoid(logits)
        terms = (1 - (p * labels + (1 - p) * (1 - labels))) ** focal_gamma * terms
    return terms.mean()


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


def make_head(kind: TaskKind, hidden: int, dropout: float, siamese: bool = False, pos_weight: float | None = None,
              focal_gamma: float | None = None) -> nn.Module:
    if kind is TaskKind.GENERATION:
        return GenerationHead()
    if kind is TaskKind.RETRIEVAL:
        return RetrievalHead(hidden)
    head = SiameseHead if siamese else ClassificationHead
    return head(hidden, dropout, pos_weight, focal_gamma)
