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
    """Combines the task losses of one step as a SUM of per-task terms.

    Because the step loss is a sum, the loop can run backward on each task's term as soon as it is
    computed (only one task's activations alive at a time) and get the same gradients as one
    backward on the total. ``weights()`` reports the current per-task weights.
    """

    def __init__(self, tasks: list[str]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.index = {t: i for i, t in enumerate(self.tasks)}

    def term(self, task: str, loss: torch.Tensor, tasks_in_step: int) -> torch.Tensor:
        """The contribution of ``task``'s loss to a step that holds ``tasks_in_step`` task batches."""
        raise NotImplementedError

    def forward(self, losses: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.stack([self.term(t, loss, len(losses)) for t, loss in losses.items()]).sum()

    def weights(self) -> dict[str, float]:
        raise NotImplementedError


class EqualWeighting(LossWeighting):
    def term(self, task: str, loss: torch.Tensor, tasks_in_step: int) -> torch.Tensor:
        return loss / tasks_in_step

    def weights(self) -> dict[str, float]:
        return dict.fromkeys(self.tasks, 1.0 / len(self.tasks))


class LearnedSoftmaxWeighting(LossWeighting):
    def __init__(self, tasks: list[str]) -> None:
        super().__init__(tasks)
        self.logits = nn.Parameter(torch.zeros(len(tasks)))

    def term(self, task: str, loss: torch.Tensor, tasks_in_step: int) -> torch.Tensor:
        return torch.softmax(self.logits, dim=0)[self.index[task]] * loss

    def weights(self) -> dict[str, float]:
        w = torch.softmax(self.logits.detach(), dim=0)
        return {t: float(w[i]) for t, i in self.index.items()}


class UncertaintyWeighting(LossWeighting):
    def __init__(self, tasks: list[str]) -> None:
        super().__init__(tasks)
        self.log_vars = nn.Parameter(torch.zeros(len(tasks)))

    def term(self, task: str, loss: torch.Tensor, tasks_in_step: int) -> torch.Tensor:
        s = self.log_vars[self.index[task]]
        return torch.exp(-s) * loss + s / 2

    def weights(self) -> dict[str, float]:
        return {t: float(torch.exp(-self.log_vars.detach()[i])) for t, i in self.index.items()}


WEIGHTINGS: Registry[type[LossWeighting]] = Registry("loss weighting")
WEIGHTINGS.add("equal", EqualWeighting)
WEIGHTINGS.add("learned_softmax", LearnedSoftmaxWeighting)
WEIGHTINGS.add("uncertainty", UncertaintyWeighting)
