"""How per-task losses combine into one step loss.

- ``equal``: the mean of the task losses in the step.
- ``learned_softmax`` (the paper): ``sum_t softmax(w)_t * L_t`` with ``w`` a learned vector, init 0.
  Note that gradient descent on this objective moves weight towards the task with the lowest loss;
  that is the paper's method, reproduced as is and logged per step so its effect can be seen.
- ``uncertainty`` (Kendall et al., CVPR 2018): ``sum_t exp(-s_t) * L_t + s_t / 2`` with learned
  log-variances ``s_t``, init 0 (the classification form, ``L / sigma^2 + log sigma``).
"""

from __future__ import annotations

import torch
from torch import nn

from mtpeft.registry import Registry


class LossWeighting(nn.Module):
    """Combines ``{task: loss}`` of one step; ``weights()`` reports the current per-task weights."""

    def __init__(self, tasks: list[str]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.index = {t: i for i, t in enumerate(self.tasks)}

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def weights(self) -> dict[str, float]:
        raise NotImplementedError


class EqualWeighting(LossWeighting):
    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack(list(losses.values())).mean()

    def weights(self) -> dict[str, float]:
        return dict.fromkeys(self.tasks, 1.0 / len(self.tasks))


class LearnedSoftmaxWeighting(LossWeighting):
    def __init__(self, tasks: list[str]) -> None:
        super().__init__(tasks)
        self.logits = nn.Parameter(torch.zeros(len(tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        w = torch.softmax(self.logits, dim=0)
        return sum(w[self.index[t]] * loss for t, loss in losses.items())  # type: ignore[return-value]

    def weights(self) -> dict[str, float]:
        w = torch.softmax(self.logits.detach(), dim=0)
        return {t: float(w[i]) for t, i in self.index.items()}


class UncertaintyWeighting(LossWeighting):
    def __init__(self, tasks: list[str]) -> None:
        super().__init__(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(tasks)))

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        terms = [torch.exp(-self.log_vars[self.index[t]]) * loss + self.log_vars[self.index[t]] / 2
                 for t, loss in losses.items()]
        return torch.stack(terms).sum()

    def weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-self.log_vars.detach()[i])) for t, i in self.index.items()}


WEIGHTINGS: Registry[type[LossWeighting]] = Registry("loss weighting")
WEIGHTINGS.add("equal", EqualWeighting)
WEIGHTINGS.add("learned_softmax", LearnedSoftmaxWeighting)
WEIGHTINGS.add("uncertainty", UncertaintyWeighting)
