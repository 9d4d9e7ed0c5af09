"""Prompt a generation task (summarization, refinement, translation, ...): the model writes the answer.

The prompt is the task's template (by default the input and the instruction a fine-tuned run trains
with), with ``shots`` solved training examples before it; decoding is greedy, at most the task's
``max_target_length`` new tokens. The output is scored by the same generation metrics as a run.
"""

from __future__ import annotations

from tqdm.auto import tqdm

from mtpeft.evaluate.outputs import SplitOutput, prediction_rows
from mtpeft.prompting.assemble import PromptBuilder, prompt_stats
from mtpeft.prompting.config import PromptConfig
from mtpeft.prompting.demonstrations import DemonstrationPicker
from mtpeft.prompting.lm import CausalLM
from mtpeft.prompting.result import TaskResult
from mtpeft.prompting.templates import Template, fields_of
from mtpeft.tasks import TaskData


def prompt_generation(lm: CausalLM, data: TaskData, config: PromptConfig, template: Template) -> TaskResult:
    name, examples = data.spec.name, data.splits[config.split]
    max_new_tokens = next(t.max_target_length for t in config.tasks if t.name == name)
    picker = DemonstrationPicker(data.splits["train"], data.spec.kind, config.shots, config.demonstrations,
                                 balanced=False, seed=config.seed)
    builder = PromptBuilder(lm.tokenizer, template, config.max_length, config.max_code_tokens)
    prompts = [builder.build(fields_of(ex), picker.pick(ex))
               for ex in tqdm(examples, desc=f"{name} prompts", disable=not lm.progress, leave=False)]
    texts, _ = lm.generate([p.ids for p in prompts], max_new_tokens, config.batch_size, desc=f"{name} generate")
    output = SplitOutput(data.spec.kind, [ex.id for ex in examples], texts=texts,
                         references=[ex.target or "" for ex in examples], language=data.spec.language)
    rows = prediction_rows(output)
    for row, prompt in zip(rows, prompts, strict=True):
        row["shots"] = prompt.shots
    return TaskResult(output, rows, prompt_stats(prompts))
