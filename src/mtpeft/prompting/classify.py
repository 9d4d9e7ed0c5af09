"""Prompt a classification task (binary or pair): one yes/no question per example.

``generate``: greedy answers, labelled by the config's parse rule; the row keeps the raw answer and
the P(yes) of the first generated token. ``score``: no generation, the label is P(yes) >= 0.5 over the
next token after the prompt. Either way the output is a :class:`SplitOutput` scored by the same
metrics as a fine-tuned run (a generated label is a probability of 0 or 1).
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from mtpeft.evaluate.outputs import SplitOutput, prediction_rows
from mtpeft.prompting.assemble import PromptBuilder, prompt_stats
from mtpeft.prompting.config import PromptConfig
from mtpeft.prompting.demonstrations import DemonstrationPicker
from mtpeft.prompting.lm import CausalLM
from mtpeft.prompting.parsing import decide
from mtpeft.prompting.result import TaskResult
from mtpeft.prompting.templates import Template, fields_of
from mtpeft.tasks import TaskData


def prompt_classification(lm: CausalLM, data: TaskData, config: PromptConfig, template: Template) -> TaskResult:
    name, examples = data.spec.name, data.splits[config.split]
    picker = DemonstrationPicker(data.splits["train"], data.spec.kind, config.shots, config.demonstrations,
                                 config.balanced, config.seed)
    builder = PromptBuilder(lm.tokenizer, template, config.max_length, config.max_code_tokens)
    prompts = [builder.build(fields_of(ex), picker.pick(ex))
               for ex in tqdm(examples, desc=f"{name} prompts", disable=not lm.progress, leave=False)]
    ids = [p.ids for p in prompts]
    extra = prompt_stats(prompts)
    answers: list[str] | None = None
    if config.mode == "generate":
        answers, p_yes = lm.generate(ids, config.max_new_tokens, config.batch_size, desc=f"{name} generate")
        predicted, extra["unparseable_rate"] = decide(answers, config.parse_rule)
        probabilities = np.asarray(predicted, dtype=np.float64)
    else:
        p_yes = probabilities = lm.score_yes(ids, config.batch_size, desc=f"{name} score")
    output = SplitOutput(data.spec.kind, [ex.id for ex in examples],
                         labels=np.asarray([ex.label for ex in examples]), probabilities=probabilities)
    rows = prediction_rows(output)
    for i, row in enumerate(rows):
        row.update({"p_yes": round(float(p_yes[i]), 6), "shots": prompts[i].shots})
        if answers is not None:
            row["answer"] = answers[i]
    extra["predicted_positive_rate"] = float(np.mean([row["prediction"] for row in rows]))
    return TaskResult(output, rows, extra)
