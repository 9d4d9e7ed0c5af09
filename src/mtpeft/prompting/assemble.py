"""Assemble one prompt (demonstrations + input) as token ids that never exceed the budget.

With a chat template, each demonstration is a user turn (the filled template) and an assistant turn
("Yes" or "No"), and the input is the last user turn followed by the generation prompt. Without one,
the turns are plain text: ``<question>\\nAnswer: Yes`` blocks separated by blank lines, ending in
``Answer:``. The closest demonstration sits last, next to the input.

Fitting ``max_length``: every code field (and query) is first cut to ``max_code_tokens``; then, while the
prompt is too long, the farthest demonstration is dropped; with none left, the longest field of the
input is cut by the overflow. Token counts are measured on the final ids, so the budget holds even where
a cut text re-tokenises differently.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from mtpeft.errors import ConfigError
from mtpeft.prompting.demonstrations import Demonstration
from mtpeft.prompting.templates import Template

ANSWERS = {1: "Yes", 0: "No"}


@dataclass(frozen=True)
class Prompt:
    ids: list[int]
    shots: int  # demonstrations that fit
    truncated: bool  # the input's code was cut


def prompt_stats(prompts: list[Prompt]) -> dict[str, float]:
    """Diagnostics for metrics.json: demonstrations that fit, share of inputs cut, tokens per prompt."""
    return {"mean_shots": float(np.mean([p.shots for p in prompts])),
            "truncated_rate": float(np.mean([p.truncated for p in prompts])),
            "mean_prompt_tokens": float(np.mean([len(p.ids) for p in prompts]))}


class PromptBuilder:
    """Renders a task's template with demonstrations into ids of at most ``max_length`` tokens."""

    def __init__(self, tokenizer: Any, template: Template, max_length: int, max_code_tokens: int) -> None:
        self.tokenizer, self.template = tokenizer, template
        self.max_length, self.max_code_tokens = max_length, max_code_tokens
        self.chat = getattr(tokenizer, "chat_template", None) is not None

    def build(self, fields: dict[str, str], demos: list[Demonstration]) -> Prompt:
        """The prompt for ``fields`` with as many of ``demos`` (closest first) as fit."""
        caps = {name: self.max_code_tokens for name in fields}
        current, truncated = self._cut(fields, caps)
        demos = [replace(d, fields=self._cut(d.fields, dict.fromkeys(d.fields, self.max_code_tokens))[0])
                 for d in demos]
        while True:
            ids = self.encode(current, demos)
            over = len(ids) - self.max_length
            if over <= 0:
                return Prompt(ids, len(demos), truncated)
            if demos:
                demos = demos[:-1]  # the farthest
                continue
            lengths = {name: len(self._tokens(text)) for name, text in current.items()}
            longest = max(lengths, key=lambda n: lengths[n])
            if lengths[longest] == 0:
                raise ConfigError(f"max_length={self.max_length} is too small: the template {self.template.origin} "
                                  f"alone takes {len(ids)} tokens")
            caps[longest] = max(0, min(caps[longest] - 1, lengths[longest] - over))
            current, _ = self._cut(fields, caps)
            truncated = True

    def encode(self, fields: dict[str, str], demos: list[Demonstration]) -> list[int]:
        """Token ids of the prompt exactly as the model will see it (demonstrations closest last)."""
        turns = [(self.template.render(d.fields), d.target if d.target is not None else ANSWERS[d.label])
                 for d in reversed(demos)]
        question = self.template.render(fields)
        if self.chat:
            messages = [m for user, answer in turns
                        for m in ({"role": "user", "content": user}, {"role": "assistant", "content": answer})]
            messages.append({"role": "user", "content": question})
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])  # the template has them
        text = "".join(f"{user}\nAnswer: {answer}\n\n" for user, answer in turns) + f"{question}\nAnswer:"
        return list(self.tokenizer(text)["input_ids"])

    def _cut(self, fields: dict[str, str], caps: dict[str, int]) -> tuple[dict[str, str], bool]:
        """Each field cut to its cap in tokens; whether any was cut."""
        out, cut = {}, False
        for name, text in fields.items():
            tokens = self._tokens(text)
            if len(tokens) > caps[name]:
                text, cut = self.tokenizer.decode(tokens[: caps[name]]), True
            out[name] = text
        return out, cut

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else []
