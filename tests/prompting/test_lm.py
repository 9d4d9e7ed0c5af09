"""Label-word scoring against a hand computation, and left padding that changes nothing."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mtpeft.prompting.assemble import PromptBuilder
from mtpeft.prompting.lm import CausalLM, label_token_ids
from mtpeft.prompting.templates import load_template
from mtpeft.tasks import TASKS


def prompts(lm: CausalLM) -> list[list[int]]:
    builder = PromptBuilder(lm.tokenizer, load_template(TASKS.get("vulnerability")), 256, 128)
    codes = ["int main(void) { return 0; }", "void f(char *s) { char b[8]; strcpy(b, s); }\n" * 3, "x;"]
    return [builder.build({"text": code}, []).ids for code in codes]


def test_label_words_are_the_first_tokens_of_each_spelling(lm: CausalLM) -> None:
    def first(word: str) -> int:
        return lm.tokenizer(word, add_special_tokens=False)["input_ids"][0]

    assert label_token_ids(lm.tokenizer) == {1: sorted({first(w) for w in ("yes", "Yes", " yes", " Yes")}),
                                             0: sorted({first(w) for w in ("no", "No", " no", " No")})}


def test_scoring_matches_a_hand_computation_on_the_exact_prompt_ids(lm: CausalLM) -> None:
    ids = prompts(lm)[0]
    with torch.no_grad():
        logits = lm.model(input_ids=torch.tensor([ids])).logits[0, -1].double()
    yes, no = lm.label_ids[1], lm.label_ids[0]
    mass_yes, mass_no = logits[yes].exp().sum(), logits[no].exp().sum()
    expected = float(mass_yes / (mass_yes + mass_no))
    assert lm.score_yes([ids], batch_size=1)[0] == pytest.approx(expected, abs=1e-6)


def test_left_padded_batches_score_and_embed_like_single_inputs(lm: CausalLM) -> None:
    batch = prompts(lm)
    assert len({len(p) for p in batch}) == 3  # different lengths: two rows are padded
    together = lm.score_yes(batch, batch_size=3)
    alone = np.array([lm.score_yes([p], batch_size=1)[0] for p in batch])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    texts = ["def f(x):\n    return x", "a much longer piece of text " * 5]
    np.testing.assert_allclose(lm.embed(texts, 64, 2).numpy(),
                               torch.cat([lm.embed([t], 64, 1) for t in texts]).numpy(), atol=1e-5)


def test_generation_reports_the_first_step_probability_and_counts_usage(lm: CausalLM) -> None:
    batch = prompts(lm)
    before = lm.usage.generated_tokens
    answers, p_yes = lm.generate(batch, max_new_tokens=3, batch_size=2)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    np.testing.assert_allclose(p_yes, lm.score_yes(batch, batch_size=3), atol=1e-5)
    assert 0 < lm.usage.generated_tokens - before <= 9
    assert lm.usage.forward_flops > 0 and lm.usage.padded_tokens >= lm.usage.prompt_tokens


def test_shared_prefix_scoring_equals_scoring_each_prompt(lm: CausalLM) -> None:
    head = prompts(lm)[1]
    groups = [[head + [300 + i] * n for i, n in enumerate((1, 4, 2))],  # one shared beginning, suffixes vary
              [[*head[:20], 400], [*head[:20], 400]],  # identical prompts: the last token is still scored
              [head]]
    before = lm.usage.prompt_tokens
    shared = lm.score_yes_shared(groups, batch_size=2)
    processed = lm.usage.prompt_tokens - before
    for group, got in zip(groups, shared, strict=True):
        np.testing.assert_allclose(got, lm.score_yes(group, batch_size=4), atol=1e-5)
    assert processed == (len(head) + 7) + (20 + 2) + len(head)  # each shared beginning counted once
