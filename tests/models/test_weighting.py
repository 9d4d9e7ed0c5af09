import pytest
import torch

from mtpeft.models.weighting import WEIGHTINGS


@pytest.mark.parametrize("name", ["learned_softmax", "uncertainty"])
def test_learned_weights_receive_gradients(name):
    weighting = WEIGHTINGS.get(name)(["a", "b"])
    losses = {"a": torch.tensor(2.0, requires_grad=True), "b": torch.tensor(0.5, requires_grad=True)}
    weighting(losses).backward()
    grads = [p.grad for p in weighting.parameters()]
    assert grads and all(g is not None and g.abs().sum() > 0 for g in grads)


def test_formulas_at_init():
    losses = {"a": torch.tensor(2.0), "b": torch.tensor(0.5)}
    assert WEIGHTINGS.get("equal")(["a", "b"])(losses).item() == pytest.approx(1.25)
    assert WEIGHTINGS.get("learned_softmax")(["a", "b"])(losses).item() == pytest.approx(1.25)  # softmax(0) = 1/2
    assert WEIGHTINGS.get("uncertainty")(["a", "b"])(losses).item() == pytest.approx(2.5)  # exp(0) * L + 0


def test_softmax_weights_move_towards_the_lower_loss():
    weighting = WEIGHTINGS.get("learned_softmax")(["a", "b"])
    optimizer = torch.optim.SGD(weighting.parameters(), lr=0.5)
    for _ in range(10):
        optimizer.zero_grad()
        weighting({"a": torch.tensor(2.0), "b": torch.tensor(0.5)}).backward()
        optimizer.step()
    assert weighting.weights()["b"] > 0.6
