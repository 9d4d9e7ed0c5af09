"""Typed run configuration, loaded from YAML with ``key=value`` overrides.

Every problem is reported at once, each with where it came from: ``run.yaml:14: train.lr: ...`` for
the file, ``override train.lr=abc: ...`` for the command line. Unknown keys list the valid ones.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mtpeft.errors import ConfigError
from mtpeft.io import not_a_file, utf8_problem

Split = Literal["train", "validation", "test"]
M = TypeVar("M", bound=BaseModel)
SPLITS: tuple[Split, ...] = ("train", "validation", "test")
RUNS_DIR = Path("runs")
DEFAULT_SEED = 42  # the paper's; prompting uses the same, so that both read the same test examples
"""Where runs, studies and prompting runs go unless ``output_dir`` says otherwise: ``runs/<name>``."""


def _unique_values(values: list[Any]) -> list[Any]:
    if len(set(values)) != len(values):
        raise ValueError(f"values must be unique, got {values}")
    return values


Baselines = Annotated[list[Literal["trivial", "lexical"]], AfterValidator(_unique_values), Field(
    description="Baselines scored beside the model on the same examples: trivial (best constant prediction, random "
    "ranking, the model before training for generation) and lexical (fitted on the run's training split: TF-IDF + "
    "logistic regression, BM25, copying the input; see mtpeft.baselines).")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)  # no lr=inf


CodeLanguage = Literal["python", "java", "c_sharp", "javascript", "go", "php", "ruby", "c", "cpp"]
"""Languages of generation targets: those CodeBLEU has a grammar for (``c_sharp``, not ``cs``)."""


class TaskConfig(_Strict):
    """One task of a run: which built-in (or custom) task, and where its data comes from."""

    name: str = Field(description="Task name: a built-in task (see `mtpeft data list`) or a new name with `kind`.")
    source: str | None = Field(None, description="Reader or builder that produces the examples; default per task.")
    path: str | None = Field(None, description="File or folder the reader reads (relative to the config file).")
    kind: Literal["binary", "pair", "retrieval", "generation"] | None = Field(
        None, description="Task kind; required for a task name that is not built in."
    )
    metric: str | None = Field(None, description="Main metric used for model selection; default per task.")
    instruction: str | None = Field(
        None, description="Generation: the line appended to every input that names the task; default per task."
    )
    language: CodeLanguage | None = Field(
        None, description="Generation: the target's programming language (python, java, c_sharp, ...; "
        "null = natural language); decides CodeBLEU and the parse rate. Default per task."
    )
    max_target_length: int = Field(
        128, ge=1, description="Generation: target tokens kept in training, and the most new tokens generated."
    )
    max_examples: int | dict[Split, int] | None = Field(
        None, description="Cap on examples per split (stratified): one number for every split, or per split."
    )
    split_ratios: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train/validation/test shares for sources that ship no split."
    )
    folds: int | None = Field(
        None, ge=3, description="Group k-fold instead of split_ratios, for sources that ship no split: the groups "
        "(e.g. projects, with reader_args split_by: project) are dealt into this many folds; `fold` is the test "
        "split, the next fold the validation split, the rest train. Run every fold to test every group once."
    )
    fold: int = Field(0, ge=0, description="folds: which fold is the test split (0 .. folds - 1).")
    reader_args: dict[str, Any] = Field(default_factory=dict, description="Extra keyword arguments for the reader.")
    long_inputs: Literal["truncate", "windows"] = Field(
        "truncate", description="truncate: keep the first train.max_length tokens of an input; windows: split it into "
        "overlapping windows of train.max_length tokens, encode them as one batch and pool their vectors."
    )
    window_stride: int | None = Field(
        None, ge=1, description="windows: tokens from one window's start to the next (default: half a window)."
    )
    max_windows: int = Field(4, ge=1, description="windows: the most windows per input; the rest is cut.")
    window_pooling: Literal["max", "mean"] = Field("max", description="windows: how window vectors become one.")
    pair_encoding: Literal["joint", "siamese"] = Field(
        "joint", description="Pair tasks. joint (the paper): both inputs in one sequence; siamese: each input encoded "
        "alone with the whole window, the head reads [u, v, |u-v|, u*v]."
    )
    loss: Literal["bce", "focal"] = Field(
        "bce", description="Classification loss: binary cross-entropy, or focal loss (Lin et al. 2017) that "
        "down-weights examples the model already gets right."
    )
    focal_gamma: float = Field(2.0, ge=0, description="focal loss: the focusing exponent (0 = cross-entropy).")
    pos_weight: float | Literal["auto"] | None = Field(
        None, description="Classification: weight of the positive class in the loss; auto = negatives / positives "
        "of the training split."
    )
    oversample_positives: float | Literal["auto"] | None = Field(
        None, description="Classification: each positive training example appears this many times per epoch "
        "(the fraction drawn per epoch); auto = negatives / positives (balanced batches on average)."
    )

    @field_validator("pos_weight", "oversample_positives")
    @classmethod
    def _positive_factor(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, float | int) and value <= 0:
            raise ValueError(f"must be a positive number or auto, got {value}")
        return value

    @field_validator("max_examples")
    @classmethod
    def _positive_caps(cls, value: int | dict[str, int] | None) -> int | dict[str, int] | None:
        caps = value.values() if isinstance(value, dict) else [value]
        if any(n is not None and n < 1 for n in caps):
            raise ValueError("every cap must be at least 1 example")
        return value

    @field_validator("split_ratios")
    @classmethod
    def _ratios_sum_to_one(cls, value: tuple[float, float, float]) -> tuple[float, float, float]:
        if any(r < 0 for r in value) or abs(sum(value) - 1.0) > 1e-6:
            raise ValueError(f"must be three non-negative shares that sum to 1, got {list(value)}")
        return value

    @model_validator(mode="after")
    def _one_way_to_split(self) -> TaskConfig:
        if self.folds is None:
            if self.fold:
                raise ValueError(f"fold {self.fold} is set without folds; give folds (the number of folds) too")
            return self
        if self.fold >= self.folds:
            raise ValueError(f"fold is {self.fold}; expected one of 0..{self.folds - 1} (folds: {self.folds})")
        if self.split_ratios != TaskConfig.model_fields["split_ratios"].default:  # a saved run's config holds both
            raise ValueError("split_ratios and folds both given; folds decides the splits, drop split_ratios")
        return self

    def cap(self, split: Split) -> int | None:
        if isinstance(self.max_examples, dict):
            return self.max_examples.get(split)
        return self.max_examples


class SamplingConfig(_Strict):
    """How tasks are interleaved in a multi-task epoch."""

    strategy: Literal["round_robin", "proportional", "temperature"] = Field(
        "round_robin",
        description="round_robin: one batch of every task per step (the paper); proportional / temperature: "
        "one task per step, drawn with probability ~ size or size^T.",
    )
    temperature: float = Field(0.3, gt=0, le=1, description="T of temperature sampling (1 = proportional).")


class TrainConfig(_Strict):
    """Optimisation, evaluation and checkpointing settings."""

    epochs: int = Field(3, ge=1, description="Passes over the data (round_robin: over the largest task).")
    batch_size: int = Field(16, ge=1, description="Examples per task batch.")
    eval_batch_size: int = Field(64, ge=1, description="Examples per batch at evaluation.")
    num_beams: int = Field(1, ge=1, description="Generation tasks: beams at evaluation (1 = greedy decoding).")
    grad_accum: int = Field(1, ge=1, description="Optimiser steps accumulate this many micro-steps.")
    lr: float = Field(5e-4, gt=0, description="Peak learning rate of the shared module.")
    head_lr: float | None = Field(None, gt=0, description="Learning rate of task heads and loss weights (default: lr).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay (not applied to biases and norms).")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Share of steps with linear warm-up.")
    grad_clip: float | None = Field(1.0, gt=0, description="Max global grad norm; null disables clipping.")
    max_length: int = Field(256, ge=8, description="Tokens per input (pairs: both inputs together).")
    precision: Literal["auto", "fp32", "bf16"] = Field(
        "auto", description="auto = bf16 autocast where the hardware supports it, else fp32."
    )
    seed: int = Field(DEFAULT_SEED, description="Seed of data order, splits, initialisation and dropout.")
    eval_every: int | None = Field(None, ge=1, description="Also evaluate every N optimiser steps.")
    checkpoint_every: int | None = Field(
        None, ge=1, description="Save a resumable checkpoint every N optimiser steps (always at epoch end)."
    )
    patience: int | None = Field(None, ge=1, description="Stop after this many evaluations without improvement.")
    probe_epochs: int = Field(
        0, ge=0, description="Before fine-tuning, fit the task heads for this many epochs on the untrained model's "
        "features (LP-FT: linear probe, then fine-tune); costs one forward pass over the training data. 0: off."
    )
    log_every: int = Field(10, ge=1, description="Write a train_log.jsonl line every N optimiser steps.")
    cpu: bool = Field(False, description="Force the CPU even when an accelerator is present.")
    keep_freed_memory: bool = Field(
        True, description="Keep freed host memory for reuse (glibc malloc thresholds; process-wide) instead of "
        "faulting large activations in again at every step; its free part is handed back every 25 steps."
    )


def unique_task_names(tasks: list[TaskConfig]) -> list[TaskConfig]:
    """Validator body shared by every config with a task list (runs, prompting)."""
    names = [t.name for t in tasks]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"task names must be unique; repeated: {', '.join(dupes)}")
    return tasks


class RunConfig(_Strict):
    """A training run: model, PEFT method, tasks, sampling, loss weighting and training settings."""

    name: str = Field(description="Run name; the run directory defaults to runs/<name>.")
    model: str = Field("minilm", description="Zoo name (see `mtpeft models`), Hugging Face id or local path.")
    pooling: Literal["cls", "pooler", "mean", "last"] | None = Field(
        None, description="How one vector is made per input; default: mean (encoders and decoders)."
    )
    method: str = Field("lora", description="Fine-tuning method; `mtpeft methods` lists them and what each can do.")
    method_args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the method's own config.")
    tasks: list[TaskConfig] = Field(min_length=1, description="Tasks trained together over one shared module.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig)
    loss_weighting: Literal["equal", "learned_softmax", "uncertainty"] = Field(
        "learned_softmax", description="How per-task losses combine (the paper: learned softmax weights)."
    )
    head_dropout: float = Field(0.1, ge=0, lt=1, description="Dropout inside binary heads.")
    attention_dropout: float | None = Field(
        None, ge=0, lt=1, description="Dropout on the backbone's attention probabilities; null keeps the model's "
        "own (MiniLM/BERT: 0.1). 0 lets PyTorch's fused attention kernel run in training (~1.9x faster steps "
        "for MiniLM on a CPU, see docs/performance.md)."
    )
    train: TrainConfig = Field(default_factory=TrainConfig)
    baselines: Baselines = ["trivial", "lexical"]
    output_dir: str | None = Field(None, description="Run directory (default runs/<name>).")
    base_dir: str | None = Field(
        None, description="Folder that relative task paths start from; set to the config file's folder on load."
    )

    @field_validator("tasks")
    @classmethod
    def _unique_task_names(cls, tasks: list[TaskConfig]) -> list[TaskConfig]:
        return unique_task_names(tasks)


    def run_dir(self) -> Path:
        return Path(self.output_dir) if self.output_dir else RUNS_DIR / self.name

    def resolve_path(self, path: str) -> Path:
        """A task path as given, or relative to the config file's folder when that is where it exists."""
        candidate = Path(path).expanduser()
        if candidate.is_absolute() or self.base_dir is None:
            return candidate
        from_config = (Path(self.base_dir) / candidate).resolve()
        return candidate if candidate.exists() and not from_config.exists() else from_config


# ---------------------------------------------------------------- loading


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Read a run config from YAML, apply ``key=value`` overrides and validate everything at once.

    Raises:
        ConfigError: listing every problem with its file line or override.
    """
    return load_yaml_model(path, RunConfig, overrides)


def load_yaml_model(path: str | Path, schema: type[M], overrides: list[str] | None = None) -> M:
    """Any config model (``RunConfig``, a study) from YAML; ``base_dir`` is the file's folder."""
    path = Path(path)
    problem = not_a_file(path)
    if problem is not None:
        raise ConfigError(f"{path}: {'no such config file' if problem == 'no such file' else problem}")
    data, lines = _read_yaml(path)
    origins: dict[tuple[str, ...], str] = {loc: f"{path}:{line}" for loc, line in lines.items()}
    problems: list[str] = []
    for item in overrides or []:
        try:
            loc = apply_override(data, item)
        except ConfigError as err:
            problems.extend(err.problems)
            continue
        origins[loc] = f"override {item}"
    if isinstance(data, dict):
        data.setdefault("base_dir", str(path.resolve().parent))
    return validate(data, origins, default_origin=str(path), problems=problems, schema=schema)


def config_from_dict(data: dict[str, Any], overrides: list[str] | None = None) -> RunConfig:
    """Validate a config given as a dict (used by tests, studies and `mtpeft eval`)."""
    data = yaml.safe_load(yaml.safe_dump(data))  # deep copy through plain types
    origins: dict[tuple[str, ...], str] = {}
    problems: list[str] = []
    for item in overrides or []:
        try:
            origins[apply_override(data, item)] = f"override {item}"
        except ConfigError as err:
            problems.extend(err.problems)
    return validate(data, origins, default_origin="config", problems=problems, schema=RunConfig)


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML (every default written out), as stored in a run directory."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def validate(data: Any, origins: dict[tuple[str, ...], str], default_origin: str, problems: list[str],
             schema: type[M]) -> M:
    problems = list(problems or [])
    if not isinstance(data, dict):
        problems.append(f"{default_origin}: expected a mapping of config sections, got {type(data).__name__}")
        raise ConfigError(problems)
    try:
        config = schema.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            loc = tuple(str(p) for p in e["loc"])
            problems.append(_describe(loc, e, origins, default_origin, schema))
        raise ConfigError(problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def apply_override(data: dict[str, Any], item: str) -> tuple[str, ...]:
    """Apply one ``a.b.c=value`` override in place (value parsed as YAML); return its location."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"override {item!r}: expected key=value, e.g. train.lr=1e-4")
    parts = key.split(".")
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, item, create=True, where=".".join(parts[: i + 1]))
    last = parts[-1]
    value = parse_yaml(raw, f"override {item}", numbered=False)[1] if raw else ""
    if isinstance(node, list):
        index = _index(node, last, item)
        node[index] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        raise ConfigError(f"override {item}: {'.'.join(parts[:-1])} is a value, not a section")
    return tuple(parts)


def _child(node: Any, part: str, item: str, create: bool, where: str) -> Any:
    if isinstance(node, list):
        return node[_index(node, part, item)]
    if not isinstance(node, dict):
        raise ConfigError(f"override {item}: {where} is inside a value, not a section")
    if part not in node or node[part] is None:
        if not create:
            raise ConfigError(f"override {item}: no key {where}")
        node[part] = {}
    return node[part]


def _index(node: list[Any], part: str, item: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"override {item}: {part!r} is not an index of a list of {len(node)} items")
    return int(part)


MAX_CONFIG_BYTES = 2**20
MAX_CONFIG_NODES = 10_000
"""A config is small (the largest shipped one: 3 kB, 105 YAML nodes): these bounds turn an alias bomb ("billion
laughs": a few lines that expand to billions of nodes) or a runaway file into one line instead of gigabytes."""


def _read_yaml(path: Path) -> tuple[Any, dict[tuple[str, ...], int]]:
    """Parse YAML and remember the 1-based line of every key path."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{path}: cannot be read ({err.strerror})") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: over {MAX_CONFIG_BYTES:,} bytes; a config file is at most that")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: {utf8_problem(data, err)}") from None
    root, data = parse_yaml(text, str(path))
    lines: dict[tuple[str, ...], int] = {}
    if root is not None:
        _collect_lines(root, (), lines)
    return (data if data is not None else {}), lines


def parse_yaml(text: str, where: str, numbered: bool = True) -> tuple[yaml.Node | None, Any]:
    """The node tree and the plain values of one YAML document (safe tags only), refused in one line
    (naming ``where``, and the line where ``numbered``) when it is not YAML or expands past
    :data:`MAX_CONFIG_NODES` nodes through aliases."""
    try:
        loader = yaml.SafeLoader(text)
    except yaml.reader.ReaderError as err:  # checked as the loader starts: a control character
        line = f":{text.count(chr(10), 0, err.position) + 1}" if numbered else ""
        raise ConfigError(f"{where}{line}: not valid YAML: U+{err.character:04X} at character {err.position + 1} is "
                          "a control character, which YAML does not allow") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        nodes = _expanded_size(root, {}, set())
        if nodes > MAX_CONFIG_NODES:
            raise ConfigError(f"{where}: expands to {_count(nodes)} YAML nodes through its aliases (*name); a config "
                              f"may have at most {MAX_CONFIG_NODES:,}")
        return root, loader.construct_document(root)
    except yaml.YAMLError as err:
        mark = err.problem_mark if isinstance(err, yaml.MarkedYAMLError) else None
        line = f":{mark.line + 1}" if mark and numbered else ""
        problem = "a YAML anchor (&name) is used inside itself; a config is a tree" if isinstance(err, _SelfReference) \
            else getattr(err, "problem", None) or err
        raise ConfigError(f"{where}{line}: not valid YAML: {problem}") from None
    except (ValueError, TypeError) as err:  # a value its tag cannot hold: `2020-02-30`, `!!int abc`
        raise ConfigError(f"{where}: not valid YAML: {err}") from None
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply to read") from None
    finally:
        loader.dispose()


class _SelfReference(yaml.MarkedYAMLError):
    """A node that contains itself (``&a [*a]``): no finite config."""


def _expanded_size(node: yaml.Node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """Nodes of the tree ``node`` stands for, each alias expanded (a shared node counts once per use); linear
    in the document however large the expansion."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise _SelfReference(problem_mark=node.start_mark)
    open_nodes.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    sizes[key] = 1 + sum(_expanded_size(child, sizes, open_nodes) for child in children)
    open_nodes.discard(key)
    return sizes[key]


def _count(n: int) -> str:
    return f"{n:,}" if n < 10**12 else f"about 10^{len(str(n)) - 1}"


def _collect_lines(node: yaml.Node, loc: tuple[str, ...], lines: dict[tuple[str, ...], int]) -> None:
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*loc, str(key_node.value))
            lines[child] = key_node.start_mark.line + 1
            if isinstance(value_node, yaml.MappingNode | yaml.SequenceNode):
                _collect_lines(value_node, child, lines)
                lines[child] = key_node.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _collect_lines(item, (*loc, str(i)), lines)


def _describe(loc: tuple[str, ...], error: dict[str, Any], origins: dict[tuple[str, ...], str], default: str,
              schema: type[BaseModel]) -> str:
    # pydantic adds union-branch names (e.g. "int", "dict[...]") to the location; drop them for display
    shown = tuple(p for p in loc[:-1] if not _is_type_tag(p))
    if loc and (error["type"] == "extra_forbidden" or not _is_type_tag(loc[-1])):  # an unknown key: the user's
        shown = (*shown, loc[-1])
    origin = default
    for n in range(len(shown), -1, -1):
        if shown[:n] in origins:
            origin = origins[shown[:n]]
            break
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        valid = _valid_keys(shown[:-1], schema)
        message = f"unknown key {shown[-1]!r}; valid keys here: {', '.join(valid)}"
    elif error["type"] != "missing" and "input" in error:
        message = f"{message}, got {error['input']!r}"
    return f"{origin}: {'.'.join(shown) or '<root>'}: {message}"


def _is_type_tag(part: str) -> bool:
    return any(ch in part for ch in "[]") or part in {"int", "float", "str", "bool", "function-after"}


def _valid_keys(loc: tuple[str, ...], schema: type[BaseModel]) -> list[str]:
    model: Any = schema
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = _submodel(field.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields)
    return []


def _submodel(annotation: Any) -> Any:
    """The pydantic model inside ``X``, ``list[X]`` or ``X | None``, if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None
