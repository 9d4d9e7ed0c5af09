"""Prompt assembly: the chat layout, and the token budget held for long inputs and many demonstrations."""

from __future__ import annotations

from typing import Any

import pytest
from transformers import AutoTokenizer

from mtpeft.errors import ConfigError
from mtpeft.models.zoo import resolve_model
from mtpeft.prompting.assemble import PromptBuilder
from mtpeft.prompting.demonstrations import Demonstration
from mtpeft.prompting.templates import Template, load_template
from mtpeft.tasks import TASKS

LONG = "\n".join(f"    int value_{i} = compute_{i}(buffer[{i}], length - {i});" for i in range(400))
CODE = f"int handler(char *buffer, int length) {{\n{LONG}\n}}"


@pytest.fixture(scope="module", params=["chat", "plain"])
def tokenizer(request: pytest.FixtureRequest) -> Any:
    tok = AutoTokenizer.from_pretrained(resolve_model("tiny-llama"))
    if request.param == "plain":
        tok.chat_template = None
    return tok


def demos(n: int, code: str = CODE) -> list[Demonstration]:
    return [Demonstration({"text": f"// demo {i}\n{code}", "text_pair": ""}, i % 2, f"d{i}") for i in range(n)]


def test_short_prompt_is_the_template_with_demonstrations_closest_last(tokenizer: Any) -> None:
    builder = PromptBuilder(tokenizer, load_template(TASKS.get("vulnerability")), 1024, 512)
    shots = [Demonstration({"text": "closest();"}, 1, "a"), Demonstration({"text": "farthest();"}, 0, "b")]
    prompt = builder.build({"text": "query();"}, shots)
    text = tokenizer.decode(prompt.ids)
    assert prompt.shots == 2 and not prompt.truncated
    assert text.index("farthest();") < text.index("closest();") < text.index("query();")
    assert "Respond with yes or no." in text and "Is this code vulnerable?" in text
    if tokenizer.chat_template:
        assert text.endswith("<|im_start|>assistant\n") and text.count("<|im_start|>assistant\nYes<|im_end|>") == 1
    else:
        assert text.endswith("Answer:") and "Answer: No\n\n" in text


@pytest.mark.parametrize(("max_length", "shots"), [(128, 0), (256, 8), (700, 16), (2048, 4)])
def test_prompt_never_exceeds_the_budget(tokenizer: Any, max_length: int, shots: int) -> None:
    builder = PromptBuilder(tokenizer, load_template(TASKS.get("clone")), max_length, max_code_tokens=300)
    prompt = builder.build({"text": CODE, "text_pair": CODE + "\n// other"}, demos(shots))
    assert len(prompt.ids) <= max_length
    assert prompt.truncated  # CODE alone is far longer than 300 tokens
    text = tokenizer.decode(prompt.ids)
    assert "Function 2:" in text and text.rstrip().endswith(("assistant", "Answer:"))
    if shots and max_length >= 2048:
        assert prompt.shots >= 1  # demonstrations are dropped only as far as needed


def test_farthest_demonstrations_go_first(tokenizer: Any) -> None:
    builder = PromptBuilder(tokenizer, load_template(TASKS.get("vulnerability")), 400, max_code_tokens=80)
    prompt = builder.build({"text": "short();"}, demos(8))
    assert 0 < prompt.shots < 8
    text = tokenizer.decode(prompt.ids)
    assert "// demo 0" in text and f"// demo {prompt.shots}" not in text


def test_a_budget_below_the_template_is_a_config_error(tokenizer: Any) -> None:
    builder = PromptBuilder(tokenizer, Template("Is this code vulnerable? " * 20 + "{text}", "test"), 20, 512)
    with pytest.raises(ConfigError, match="max_length=20 is too small"):
        builder.build({"text": "int x;"}, [])
