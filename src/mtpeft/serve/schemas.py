"""Request and response shapes: pydantic models, so a bad request is a 422 whose ``loc`` names the field.

The input models (one per task kind) serve both `mtpeft predict` (one per jsonl line) and the HTTP API;
the request models are built per run, so ``task`` only accepts the run's task names and the OpenAPI
page lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal, TypeVar, Union

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WrapValidator, create_model, field_validator

from mtpeft.serve.limits import Limits
from mtpeft.tasks.spec import TaskKind, TaskSpec


def well_formed(text: Any) -> Any:
    """Refuse lone surrogates: JSON can escape them (``"\\ud800"``), but they are not Unicode text, and
    neither a tokenizer nor a JSON writer takes them. Checked before the type and the length (which pydantic
    cannot measure on them), so the message says what is wrong."""
    if isinstance(text, str):
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as err:
            raise ValueError(f"not valid Unicode text: a lone surrogate at character {err.start}") from None
    return text


Text = Annotated[str, BeforeValidator(well_formed)]
JSON_TYPES = {float: "a number with a fraction or exponent", bool: "a boolean", list: "an array", dict: "an object"}


def string_or_integer(value: Any, handler: Callable[[Any], Any]) -> Any:
    """One message for an id of another type, where the union would give one per branch. A float is not an id:
    ``1.0`` and ``1`` would be one id to some clients and two to others, and large ones lose digits."""
    if isinstance(value, str):
        return well_formed(value)
    if isinstance(value, int) and not isinstance(value, bool):
        return handler(value)
    raise ValueError(f"an id is a string or an integer, got {JSON_TYPES.get(type(value), type(value).__name__)}")


Ident = Annotated[Text | int, WrapValidator(string_or_integer)]
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    """Unknown fields are errors (a typo like ``cdoe`` is named) and types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)


class _Input(_Strict):
    id: Ident | None = Field(None, description="Any id of yours; passed through to the answer.")


class CodeInput(_Input):
    """One input of a binary task."""

    code: Text = Field(description="The code to classify.")


class PairInput(_Input):
    """One input of a pair task: both codes are encoded jointly, as in training."""

    code1: Text = Field(description="The first input (e.g. a function, or a docstring).")
    code2: Text = Field(description="The second input.")


class QueryInput(_Input):
    """One query of a retrieval task, ranked against a pool of code."""

    query: Text = Field(description="Natural-language query.")


INPUTS: dict[TaskKind, type[_Input]] = {TaskKind.BINARY: CodeInput, TaskKind.PAIR: PairInput,
                                        TaskKind.RETRIEVAL: QueryInput}


def input_fields(kind: TaskKind) -> list[str]:
    """The text fields an input of ``kind`` carries, in order (``code`` / ``code1, code2`` / ``query``)."""
    return [name for name in INPUTS[kind].model_fields if name != "id"]


class PoolItem(_Strict):
    """One code of a search pool."""

    id: Ident = Field(description="Returned in search hits.")
    code: Text = Field(description="The code to index.")


def repeated_id(ids: Sequence[Ident]) -> tuple[int, int] | None:
    """The first ``(earlier, later)`` positions that share an id, compared as text (``1`` and ``"1"`` would be
    the same hit to a client); None when ids are unique."""
    first: dict[str, int] = {}
    for i, ident in enumerate(ids):
        j = first.setdefault(str(ident), i)
        if j != i:
            return j, i
    return None


class _IndexUpload(_Strict):
    """Ids must be unique, also as text."""

    @field_validator("items", check_fields=False)
    @classmethod
    def _unique_ids(cls, items: list[PoolItem]) -> list[PoolItem]:
        repeated = repeated_id([item.id for item in items])
        if repeated is not None:
            j, i = repeated
            raise ValueError(f"ids must be unique: items {j} and {i} both have id {str(items[i].id)!r}")
        return items


def bounded_text(model: type[BaseModel], limits: Limits) -> dict[str, Any]:
    """The text fields of ``model`` (all but ``id``) capped at ``limits.max_text_chars`` (for create_model)."""
    return {name: (Text, Field(max_length=limits.max_text_chars, description=field.description))
            for name, field in model.model_fields.items() if name != "id"}


def bounded(model: type[M], limits: Limits) -> type[M]:
    """``model`` with its text fields capped at ``limits.max_text_chars``, as the HTTP API caps them."""
    return create_model(model.__name__, __base__=model, **bounded_text(model, limits))


def tasks_of(specs: dict[str, TaskSpec], *kinds: TaskKind) -> list[str]:
    return sorted(name for name, spec in specs.items() if spec.kind in kinds)


def predict_request(specs: dict[str, TaskSpec], limits: Limits) -> type[BaseModel] | None:
    """``{"items": [...]}`` where each item's ``task`` picks its fields (a discriminated union on ``task``);
    None when the run has no classification task."""
    variants: list[type[BaseModel]] = []
    for kind in (TaskKind.BINARY, TaskKind.PAIR):
        names = tasks_of(specs, kind)
        if names:
            task = Literal[tuple(names)]  # type: ignore[valid-type]
            variants.append(create_model(f"{kind.value.title()}Item", __base__=INPUTS[kind],
                                         task=(task, Field(description=f"One of the run's {kind} tasks.")),
                                         **bounded_text(INPUTS[kind], limits)))
    if not variants:
        return None
    item: Any = variants[0] if len(variants) == 1 else Annotated[Union[tuple(variants)],  # noqa: UP007
                                                                  Field(discriminator="task")]
    return create_model("PredictRequest", __base__=_Strict,
                        items=(list[item], Field(min_length=1, max_length=limits.max_items,
                                                 description="Items of any of the run's classification tasks.")))


def search_requests(specs: dict[str, TaskSpec], limits: Limits) -> tuple[type[BaseModel], type[BaseModel]] | None:
    """The index upload and search request models; None when the run has no retrieval task."""
    names = tasks_of(specs, TaskKind.RETRIEVAL)
    if not names:
        return None
    item = bounded(PoolItem, limits)
    index = create_model(
        "IndexRequest", __base__=_IndexUpload,
        name=(str, Field(pattern=r"^[A-Za-z0-9_.\-]{1,64}$", description="Index name (replaces one of that name).")),
        items=(list[item], Field(min_length=1, max_length=limits.max_index_items,
                                 description="The code pool; ids unique.")),
    )
    task = Literal[tuple(names)]  # type: ignore[valid-type]
    search = create_model(
        "SearchRequest", __base__=_Strict,
        task=(task, Field(description="One of the run's retrieval tasks.")),
        index=(str, Field(description="Name of an uploaded index.")),
        query=(Text, Field(max_length=limits.max_text_chars, description="Natural-language query.")),
        top_k=(int, Field(10, ge=1, le=limits.max_top_k, description="Hits to return.")),
    )
    return index, search


class Prediction(BaseModel):
    id: Ident | None = None
    task: str
    label: int = Field(description="1 when probability >= the task's threshold (tuned on validation).")
    probability: float
    truncated: bool = Field(description="The input was longer than the run's max_length tokens and was cut.")


class PredictResponse(BaseModel):
    results: list[Prediction] = Field(description="One answer per item, in request order.")


class Hit(BaseModel):
    id: Ident
    score: float = Field(description="Cosine similarity of query and code embeddings.")


class SearchResponse(BaseModel):
    task: str
    index: str
    hits: list[Hit]
    truncated: bool


class IndexResponse(BaseModel):
    name: str
    size: int
    tasks: list[str] = Field(description="Retrieval tasks this index can be searched with.")
    truncated: int = Field(description="How many codes were longer than max_length tokens and were cut.")


class TaskInfo(BaseModel):
    name: str
    kind: str
    metric: str
    threshold: float | None
    inputs: list[str] = Field(description="Fields an item of this task carries.")
    endpoint: str


class TasksResponse(BaseModel):
    run: str
    model: str
    max_length: int
    tasks: list[TaskInfo]


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    batches: int = Field(description="Forward passes run so far.")
    items: int = Field(description="Items answered so far (batches / items: how well requests were merged).")
    queued: int
    indexes: int
