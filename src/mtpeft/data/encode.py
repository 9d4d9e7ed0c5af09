"""Tokenise a task's examples once, up front, so the training loop does no per-example Python work."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mtpeft.errors import ConfigError
from mtpeft.tasks.spec import Example, TaskKind

CHARS_PER_TOKEN = 128
"""Characters one kept token may come from: a text is cut to ``tokens * CHARS_PER_TOKEN`` characters before it
is tokenised (:func:`keep_chars`), so the tokenizer's work is bounded by what a task keeps, not by the text.

Why results do not change: a token covers at most 18 characters of MiniLM's vocabulary and 81 of SmolLM2's, and
the densest real inputs measured (Devign, BigCloneBench, Big-Vul, FlakeFlagger, CodeXGLUE refinement and
translation; both tokenizers; 16 to 1,024 tokens kept) needed at most 9 characters per token to fill what they
keep. A byte-level BPE drops no character, so there the kept tokens end before 81 / 128 of the cut, which can only
change them from inside one word (a run of letters, digits or blanks) over a third of the characters kept. A
WordPiece tokenizer drops whitespace, so a text that is mostly blanks could fill fewer tokens from its first
characters: it is then reported as cut (``truncated``), which it was. One id can move in a joint pair whose two
inputs both fill more than half of an odd budget, one of them cut: longest-first truncation gives the odd token to
the longer input, and which one is longer is then judged on what was read.
"""


@dataclass(frozen=True)
class Windowing:
    """How one input becomes overlapping windows: ``content`` tokens each (the model's window less its special
    tokens, which every window gets again), one starting every ``stride`` tokens, at most ``max_windows``."""

    content: int
    stride: int
    max_windows: int
    prefix: tuple[int, ...]  # special tokens before a window's content ([CLS], <s>, ...)
    suffix: tuple[int, ...]  # and after it ([SEP], </s>, ...)

    @property
    def coverage(self) -> int:
        """Tokens of an input the windows can hold; the rest is cut."""
        return self.content + (self.max_windows - 1) * self.stride

    def count(self, length: int) -> int:
        """How many windows an input of ``length`` content tokens gets."""
        return min(self.max_windows, 1 + max(0, -(-(length - self.content) // self.stride)))

    def tokens(self, length: int) -> int:
        """Tokens the windows of an input of ``length`` content tokens hold, special tokens included: what it
        costs (equal to the total length of :meth:`split`'s windows)."""
        windows = self.count(length)
        covered = sum(min(self.content, max(length - k * self.stride, 0)) for k in range(windows))
        return covered + windows * (len(self.prefix) + len(self.suffix))

    def split(self, tokens: list[int]) -> list[list[int]]:
        """The windows of ``tokens`` (content without special tokens), each with its special tokens.

        Example:
            >>> Windowing(content=4, stride=2, max_windows=3, prefix=(101,), suffix=(102,)).split(list(range(7)))
            [[101, 0, 1, 2, 3, 102], [101, 2, 3, 4, 5, 102], [101, 4, 5, 6, 102]]
        """
        out, start = [], 0
        while True:
            out.append([*self.prefix, *tokens[start:start + self.content], *self.suffix])
            if start + self.content >= len(tokens) or len(out) == self.max_windows:
                return out
            start += self.stride


@dataclass(frozen=True)
class InputFormat:
    """How a task's inputs become token rows: truncated, or cut into windows (``long_inputs``); a pair's two
    inputs in one sequence or each alone (``pair_encoding``)."""

    windows: bool = False
    window_stride: int | None = None
    max_windows: int = 1
    siamese: bool = False

    def windowing(self, tokenizer: Any, max_length: int) -> Windowing | None:
        if not self.windows:
            return None
        prefix, suffix = special_tokens(tokenizer)
        content = max_length - len(prefix) - len(suffix)
        if content < 2:
            raise ConfigError(f"train.max_length: {max_length} leaves no room for a window's content next to its "
                              f"{len(prefix) + len(suffix)} special tokens")
        if self.window_stride is not None and self.window_stride > content:
            raise ConfigError(f"window_stride: {self.window_stride} is more than a window holds ({content} tokens "
                              f"besides special tokens at max_length {max_length}): tokens between windows would be "
                              "skipped")
        stride = self.window_stride or max(content // 2, 1)
        return Windowing(content, stride, self.max_windows, tuple(prefix), tuple(suffix))


@dataclass
class EncodedSplit:
    """Token ids of one split of one task.

    Classification: ``ids[i]`` is the (joint, for pairs) input of example i and ``labels[i]`` its label; a
    siamese pair has its second input in ``pair_ids[i]``.
    Retrieval: ``ids[i]`` is query i and ``pair_ids[i]`` the code that answers it.
    Generation: ``ids[i]`` is prompt i (input + instruction), ``pair_ids[i]`` its target tokens (ending
    with end-of-sequence) and ``references[i]`` the target text that generated text is scored against.
    With ``windowing``, ``ids`` and ``pair_ids`` hold each input's tokens without special tokens, and
    :meth:`rows` cuts them into windows; otherwise each input is one (truncated) row.
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
    windowing: Windowing | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def two_inputs(self) -> bool:
        """Each example has a second input encoded on its own (retrieval codes, siamese pairs)."""
        return self.kind is TaskKind.RETRIEVAL or (self.kind is TaskKind.PAIR and bool(self.pair_ids))

    def rows(self, i: int, second: bool = False) -> list[list[int]]:
        """The token rows the encoder reads for input ``i`` (``second``: its second input)."""
        tokens = (self.pair_ids if second else self.ids)[i]
        return self.windowing.split(tokens) if self.windowing else [tokens]

    def input_sizes(self) -> list[tuple[int, ...]]:
        """Tokens per example of each input that a batch pads on its own (every window counted): one for a single
        input or a decoder's prompt + target, two for two-input tasks and an encoder-decoder's prompt and target."""
        if self.kind is TaskKind.GENERATION:
            if self.seq2seq:
                return [(len(a), len(b)) for a, b in zip(self.ids, self.pair_ids, strict=True)]
            return [(len(a) + len(b),) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        inputs = [self.ids, self.pair_ids] if self.two_inputs else [self.ids]
        cost = self.windowing.tokens if self.windowing else int
        return [tuple(cost(len(side[i])) for side in inputs) for i in range(len(self))]

    def longest_inputs(self) -> list[int]:
        """Tokens of each example's longest single input (what truncation is applied to)."""
        if self.kind is TaskKind.GENERATION:
            return [len(a) for a in self.ids]
        if self.two_inputs:
            return [max(len(a), len(b)) for a, b in zip(self.ids, self.pair_ids, strict=True)]
        return [len(a) for a in self.ids]


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
                    generation: GenerationFormat | None = None, inputs: InputFormat | None = None) -> EncodedSplit:
    """Tokenise with truncation to ``max_length`` (joint pairs: longest-first, so both inputs keep their start),
    or, with ``inputs.windows``, every input whole up to the windows' coverage."""
    ids = [ex.id for ex in examples]
    if kind is TaskKind.GENERATION:
        if generation is None:
            raise ValueError("a generation task needs a GenerationFormat")
        return encode_generation(examples, tokenizer, max_length, generation)
    inputs = inputs or InputFormat()
    windowing = inputs.windowing(tokenizer, max_length)
    if not examples:  # a run reloaded without its data (serving) has empty splits
        return EncodedSplit(kind, [], example_ids=ids, windowing=windowing)
    texts = [ex.text for ex in examples]
    seconds = [ex.text_pair or "" for ex in examples]
    labels = [int(ex.label) for ex in examples] if kind is not TaskKind.RETRIEVAL else []  # type: ignore[arg-type]
    if kind is TaskKind.RETRIEVAL or (kind is TaskKind.PAIR and inputs.siamese):
        return EncodedSplit(kind, encode_inputs(tokenizer, texts, max_length, windowing), labels=labels,
                            pair_ids=encode_inputs(tokenizer, seconds, max_length, windowing), example_ids=ids,
                            windowing=windowing)
    if kind is TaskKind.PAIR:
        return EncodedSplit(kind, tokenize(tokenizer, texts, max_length, seconds), labels=labels, example_ids=ids)
    return EncodedSplit(kind, encode_inputs(tokenizer, texts, max_length, windowing), labels=labels,
                        example_ids=ids, windowing=windowing)


def encode_inputs(tokenizer: Any, texts: list[str], max_length: int, windowing: Windowing | None) -> list[list[int]]:
    """Single inputs as token ids: truncated rows with special tokens, or (``windowing``) the tokens the
    windows can hold, without special tokens (every window adds its own)."""
    if windowing is None:
        return tokenize(tokenizer, texts, max_length)
    return tokenizer(keep_chars(texts, windowing.coverage), add_special_tokens=False, truncation=True,
                     max_length=windowing.coverage)["input_ids"]


def keep_chars(texts: list[str], tokens: int) -> list[str]:
    """Each text cut to the characters its first ``tokens`` tokens can come from (:data:`CHARS_PER_TOKEN` each):
    tokenising a 50 MB string to keep 256 of its tokens would otherwise read all of it."""
    limit = tokens * CHARS_PER_TOKEN
    return [text[:limit] for text in texts]


def _cut_by_chars(text: str, tokens: int) -> bool:
    return len(text) > tokens * CHARS_PER_TOKEN


def special_tokens(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after a single input (``[CLS]`` / ``[SEP]``, ...)."""
    content = tokenizer("x", add_special_tokens=False)["input_ids"]
    full = tokenizer("x")["input_ids"]
    for start in range(len(full) - len(content) + 1):
        if full[start:start + len(content)] == content:
            return full[:start], full[start + len(content):]
    raise ValueError(f"tokenizer {tokenizer.name_or_path!r}: cannot find an input between its special tokens")


def encode_generation(examples: list[Example], tokenizer: Any, max_length: int,
                      generation: GenerationFormat) -> EncodedSplit:
    """Prompts of at most ``max_length`` tokens, and targets of at most ``max_target_length`` (with end-of-sequence)."""
    prompts = prompt_ids(tokenizer, [ex.text for ex in examples], max_length, generation.instruction)
    eos = end_token_id(tokenizer)
    texts = [ex.target or "" for ex in examples]
    kept = keep_chars(texts, generation.max_target_length)
    targets = [[*row[: generation.max_target_length - 1], eos]
               for row in (tokenizer(kept, add_special_tokens=False)["input_ids"] if texts else [])]
    return EncodedSplit(TaskKind.GENERATION, prompts, pair_ids=targets, example_ids=[ex.id for ex in examples],
                        references=texts,
                        max_new_tokens=generation.max_target_length, language=generation.language,
                        seq2seq=generation.seq2seq)


def end_token_id(tokenizer: Any) -> int:
    """The token that ends a generated answer: end-of-sequence, else the separator (BERT-style vocabularies)."""
    token = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if token is None:
        raise ConfigError(f"model: tokenizer {tokenizer.name_or_path!r} has neither an end-of-sequence nor a separator "
                          "token; a generation task needs one to end its targets")
    return int(token)


def prompt_ids(tokenizer: Any, texts: list[str], max_length: int, instruction: str) -> list[list[int]]:
    """``input`` + a line with the instruction, in at most ``max_length`` tokens: the input is cut at its END,
    so the instruction (and the start of the code: its signature) always survive.

    The one place generation prompts become tokens, so training, evaluation and serving see identical ids.
    """
    suffix = _instruction_ids(tokenizer, instruction)
    if len(suffix) >= max_length:
        raise ConfigError(f"instruction: {instruction!r} takes {len(suffix)} tokens, and train.max_length is "
                          f"{max_length}; shorten the task's instruction or raise train.max_length")
    if not texts:
        return []
    sources = tokenizer(keep_chars(texts, max_length), truncation=True,
                        max_length=max_length - len(suffix))["input_ids"]
    return [row + suffix for row in sources]


def prompts_cut(tokenizer: Any, texts: list[str], prompts: list[list[int]], instruction: str,
                max_length: int) -> list[bool]:
    """Which of :func:`prompt_ids`' prompts (``prompts``, for the same ``texts`` and ``max_length``) had their
    input cut short."""
    kept = len(_instruction_ids(tokenizer, instruction))
    full = tokenizer(keep_chars(texts, max_length), verbose=False)["input_ids"] if texts else []
    return [_cut_by_chars(text, max_length) or len(whole) > len(prompt) - kept
            for text, whole, prompt in zip(texts, full, prompts, strict=True)]


def _instruction_ids(tokenizer: Any, instruction: str) -> list[int]:
    return tokenizer("\n" + instruction + "\n", add_special_tokens=False)["input_ids"]


def tokenize(tokenizer: Any, texts: list[str], max_length: int, pairs: list[str] | None = None) -> list[list[int]]:
    """Token ids of single inputs, or of ``(texts[i], pairs[i])`` encoded jointly, truncated to ``max_length``
    (longest-first for pairs, so both inputs keep their start).

    The one place inputs become tokens, so training, evaluation and serving see identical ids. Each input is
    first cut to what ``max_length`` tokens can come from (:func:`keep_chars`).
    """
    texts = keep_chars(texts, max_length)
    if pairs is None or not texts:
        return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"] if texts else []
    pairs = keep_chars(pairs, max_length)
    if not tokenizer.is_fast:
        return tokenizer(*_inputs(tokenizer, texts, pairs), truncation="longest_first",
                         max_length=max_length)["input_ids"]
    # A fast tokenizer that truncates a pair also builds every combination of the two inputs' cut-off pieces (two
    # inputs of 30,000 tokens: some 14,000 rows of 256), gigabytes for one pair of long functions; so the pair is
    # encoded whole and cut here, by the tokenizer's own longest-first rule (tests compare the two).
    encoded = tokenizer(*_inputs(tokenizer, texts, pairs), verbose=False)
    budget = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    return [_cut_pair(row, encoded.sequence_ids(i), budget) for i, row in enumerate(encoded["input_ids"])]


def _cut_pair(ids: list[int], sequence: list[int | None], budget: int) -> list[int]:
    """A whole joint pair (``sequence``: which input each token is of, None for special tokens) cut to ``budget``
    tokens besides its special tokens, as the ``tokenizers`` library's longest-first truncation cuts it: the
    shorter input whole when the longer can take the rest, else half the budget each (the longer input, the
    second one on a tie, gets the odd token)."""
    lengths = sequence.count(0), sequence.count(1)
    if sum(lengths) <= budget:
        return ids
    shorter, longer = (1, 0) if lengths[0] > lengths[1] else (0, 1)
    keep = [0, 0]
    if 2 * lengths[shorter] <= budget:
        keep[shorter], keep[longer] = lengths[shorter], budget - lengths[shorter]
    else:
        keep[shorter], keep[longer] = budget // 2, budget // 2 + budget % 2
    starts = [sequence.index(k) if lengths[k] else len(ids) for k in (0, 1)]
    if not lengths[0]:
        starts[0] = 0
    return (ids[:starts[0] + keep[0]] + ids[starts[0] + lengths[0]:starts[1] + keep[1]]
            + ids[starts[1] + lengths[1]:])


def truncated(tokenizer: Any, texts: list[str], ids: list[list[int]], max_length: int,
              pairs: list[str] | None = None, windowing: Windowing | None = None) -> list[bool]:
    """Which inputs :func:`tokenize` (or, with ``windowing``, :func:`encode_inputs`) cut short; ``ids`` is its
    output for the same arguments.

    Only rows that came back as long as allowed can have been cut, so only those are tokenised again; a text
    longer than the characters the kept tokens can come from (:func:`keep_chars`) was cut.
    """
    limit = windowing.coverage if windowing else max_length
    flags = [_cut_by_chars(text, limit) or (pairs is not None and _cut_by_chars(pairs[i], limit))
             for i, text in enumerate(texts)]
    full = [i for i, row in enumerate(ids) if len(row) >= limit and not flags[i]]
    if full:
        again = _inputs(tokenizer, [texts[i] for i in full], None if pairs is None else [pairs[i] for i in full])
        rows = tokenizer(*again, truncation=False, verbose=False, add_special_tokens=windowing is None)["input_ids"]
        for i, row in zip(full, rows, strict=True):
            flags[i] = len(row) > limit
    return flags


def _inputs(tokenizer: Any, texts: list[str], pairs: list[str] | None) -> tuple[list[str], ...]:
    return (texts,) if pairs is None else (texts, [pair_separator(tokenizer) + p for p in pairs])


def pair_separator(tokenizer: Any) -> str:
    """Text put before the second input: nothing when the tokenizer has a pair template (BERT's
    [SEP]), else its end-of-sequence token, so a decoder still sees where one function ends."""
    if tokenizer.num_special_tokens_to_add(pair=True) > tokenizer.num_special_tokens_to_add(pair=False):
        return ""
    return tokenizer.eos_token or "\n"
