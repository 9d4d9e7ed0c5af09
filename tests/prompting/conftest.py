"""Fixtures of the prompting tests: tiny-llama (random weights, the real SmolLM2 tokenizer and chat template)."""

from __future__ import annotations

import pytest

from mtpeft.prompting.lm import CausalLM


@pytest.fixture(scope="module")
def lm() -> CausalLM:
    with pytest.warns(UserWarning, match="no trained LM head"):
        return CausalLM("tiny-llama", progress=False)
