"""Tokenise a task's examples once, up front, so the training loop does no per-example Python work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtpeft.tasks.spec import Example, TaskKind


@dataclass
class EncodedSplit:
    """Token ids of one split of one task.

    Classification: ``ids[i]`` is the (joint, for pairs) input of example i and ``labels[i]`` its label.
    Retrieval: ``ids[i]`` is query i and ``pair_ids[i]`` the code that answers it.
    Generation: ``ids[i]`` is prompt i (input + instruction), ``pair_ids[i]`` its target tokens (ending
    with end-of-sequence) and ``references[i]`` the target text that generated text is scored against.
    """

    kind: TaskKind
    ids: list[list[int]]
    labels: list[int] = field(default_factory=list)
    pair_ids: list[list[int]] = field(default_factory=list)
    example_ids: list[str] = field(default_factory=list)
    references: list[str] = field(default_factory=list)
    max_new_tokens: int = 0  # generation: the most tokens decoded per prompt
    language: str | None = None  # generation: what the references are written in (None: English)
    seq2seq: bool = False  # generation: targets go to a decoder, not after the prompt

    def __len__(self) -> int:
        return len(self.ids)

    def lengths(self) -> list[int]:
        """Tokens per example (query + code for retrieval, prompt + target for generation): what a batch costs."""
        if self.kind in (TaskKind.RETRIEVAL, TaskKind.GENERATION):
            return [len(a) + len(b) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        return [len(a) for a in self.ids]

    def longest_inputs(self) -> list[int]:
        """Tokens of each example's longest single input (what truncation is applied to)."""
        if self.kind is TaskKind.RETRIEVAL:
            return [max(len(a), len(b)) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        if self.kind is TaskKind.GENERATION:
            return [len(a) for a in self.ids]
        return self.lengths()


@dataclass(frozen=True)
class GenerationFormat:
    """How a generation task turns its input into a prompt: the instruction line that names the task
    (so one shared model can tell its generation tasks apart), the target budget in tokens, and the
    language of the targets (which decides the code metrics)."""

    instruction: str
    max_target_length: int
    language: str | None = None
    seq2seq: bool = False  # an encoder-decoder reads the prompt and writes the target in its decoder


def encode_examples(examples: list[Example], kind: TaskKind, tokenizer: Any, max_length: int,
                    generation: GenerationFormat | None = None) -> EncodedSplit:
    """Tokenise with truncation to ``max_length`` (pairs: longest-first, so both inputs keep their start)."""
    ids = [ex.id for ex in examples]
    if kind is TaskKind.GENERATION:
        if generation is None:
            raise ValueError("a generation task needs a GenerationFormat")
        return encode_generation(examples, tokenizer, max_length, generation)
    if not examples:  # a run reloaded without its data (serving) has empty splits
        return EncodedSplit(kind, [], example_ids=ids)
    texts = [ex.text for ex in examples]
    if kind is TaskKind.RETRIEVAL:
        queries = tokenize(tokenizer, texts, max_length)
        codes = tokenize(tokenizer, [ex.text_pair or "" for ex in examples], max_length)
        return EncodedSplit(kind, queries, pair_ids=codes, example_ids=ids)
    labels = [int(ex.label) for ex in examples]  # type: ignore[arg-type]
    pairs = [ex.text_pair or "" for ex in examples] if kind is TaskKind.PAIR else None
    return EncodedSplit(kind, tokenize(tokenizer, texts, max_length, pairs), labels=labels, example_ids=ids)


def encode_generation(examples: list[Example], tokenizer: Any, max_length: int,
                      generation: GenerationFormat) -> EncodedSplit:
    """Prompts of at most ``max_length`` tokens, and targets of at most ``max_target_length`` (with end-of-sequence)."""
    prompts = prompt_ids(tokenizer, [ex.text for ex in examples], max_length, generation.instruction)
    eos = end_token_id(tokenizer)
    texts = [ex.target or "" for ex in examples]
    targets = [[*row[: generation.max_target_length - 1], eos]
               for row in (tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else [])]
    return EncodedSplit(TaskKind.GENERATION, prompts, pair_ids=targets, example_ids=[ex.id for ex in examples],
                        references=texts,
                        max_new_tokens=generation.max_target_length, language=generation.language,
                        seq2seq=generation.seq2seq)


def end_token_id(tokenizer: Any) -> int:
    """The token that ends a generated answer: end-of-sequence, else the separator (BERT-style vocabularies)."""
    token = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if token is None:
        raise ValueError(f"tokenizer {tokenizer.name_or_path!r} has neither an end-of-sequence nor a separator token; "
                         "a generation task needs one to end its targets")
    return int(token)


def prompt_ids(tokenizer: Any, texts: list[str], max_length: int, instruction: str) -> list[list[int]]:
    """``input`` + a line with the instruction, in at most ``max_length`` tokens: the input is cut at its END,
    so the instruction (and the start of the code: its signature) always survive.

    The one place generation prompts become tokens, so training, evaluation and serving see identical ids.
    """
    suffix = _instruction_ids(tokenizer, instruction)
    if len(suffix) >= max_length:
        raise ValueError(f"the instruction {instruction!r} takes {len(suffix)} tokens; max_length is {max_length}")
    if not texts:
        return []
    sources = tokenizer(texts, truncation=True, max_length=max_length - len(suffix))["input_ids"]
    return [row + suffix for row in sources]


def prompts_cut(tokenizer: Any, texts: list[str], prompts: list[list[int]], instruction: str) -> list[bool]:
    """Which of :func:`prompt_ids`' prompts (``prompts``, for the same ``texts``) had their input cut short."""
    kept = len(_instruction_ids(tokenizer, instruction))
    full = tokenizer(texts, verbose=False)["input_ids"] if texts else []
    return [len(whole) > len(prompt) - kept for whole, prompt in zip(full, prompts, strict=True)]


def _instruction_ids(tokenizer: Any, instruction: str) -> list[int]:
    return tokenizer("\n" + instruction + "\n", add_special_tokens=False)["input_ids"]


def tokenize(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> list[list[int]]:
    """Token ids of single inputs, or of ``(texts[i], pairs[i])`` encoded jointly, truncated to ``max_length``
    (longest-first for pairs, so both inputs keep their start).

    The one place inputs become tokens, so training, evaluation and serving see identical ids.
    """
    return tokenizer(*_inputs(tokenizer, texts, pairs), truncation="longest_first", max_length=max_length)["input_ids"]


def truncated(tokenizer: Any, texts: list[str], ids: list[list[int]], max_length: int,
              pairs: list[str] | None = None) -> list[bool]:
    """Which inputs :func:`tokenize` cut short (``ids`` is its output for the same arguments).

    Only rows that came back ``max_length`` long can have been cut, so only those are tokenised again.
    """
    full = [i for i, row in enumerate(ids) if len(row) >= max_length]
    flags = [False] * len(ids)
    if full:
        again = _inputs(tokenizer, [texts[i] for i in full], None if pairs is None else [pairs[i] for i in full])
        for i, row in zip(full, tokenizer(*again, truncation=False, verbose=False)["input_ids"], strict=True):
            flags[i] = len(row) > max_length
    return flags


def _inputs(tokenizer: Any, texts: list[str], pairs: list[str] | None) -> tuple[list[str], ...]:
    return (texts,) if pairs is None else (texts, [_pair_separator(tokenizer) + p for p in pairs])


def _pair_separator(tokenizer: Any) -> str:
    """Text put before the second input: nothing when the tokenizer has a pair template (BERT's
    [SEP]), else its end-of-sequence token, so a decoder still sees where one function ends."""
    if tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(pair=False):
        return ""
    return tokenizer.eos_token or "\n"
