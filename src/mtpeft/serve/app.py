"""The HTTP service over one run (FastAPI): every task of the run behind one shared backbone.

Routes: ``POST /v1/predict`` (items of any classification tasks, answered in merged batches),
``POST /v1/search/index`` + ``DELETE /v1/search/index/{name}`` + ``POST /v1/search`` (retrieval tasks),
``GET /v1/tasks``, ``GET /healthz``; OpenAPI docs at ``/docs``. With an API key, every route needs it in
the ``X-API-Key`` header (the docs pages describe the API only and stay open). The server never reads
a file a request names: everything it answers comes from the run loaded at start and the request body.
"""

# No `from __future__ import annotations`: FastAPI reads endpoint annotations at runtime, and the request
# models are classes built per run inside create_app.

import hmac
import math
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import torch
from fastapi import Depends, FastAPI, HTTPException, Request, Response, Security
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel

from mtpeft import __version__
from mtpeft.errors import ConfigError
from mtpeft.serve.batcher import Batcher, QueueFull
from mtpeft.serve.body_limit import BodyLimit
from mtpeft.serve.index import IndexStore, NoSuchIndex, SearchIndex, TooManyIndexes
from mtpeft.serve.limits import Limits
from mtpeft.serve.predictor import Encoded, Predictor
from mtpeft.serve.schemas import (
    Health,
    IndexResponse,
    PredictResponse,
    SearchResponse,
    TaskInfo,
    TasksResponse,
    input_fields,
    predict_request,
    search_requests,
)
from mtpeft.tasks.spec import TaskKind

API_KEY_HEADER = "X-API-Key"
_STATUS = {NoSuchIndex: 404, TooManyIndexes: 409, QueueFull: 503}


class ErrorDetail(BaseModel):
    detail: str


_ERRORS = {  # what each status means, for the OpenAPI page (422 is FastAPI's own)
    400: "The body is not JSON text (e.g. not UTF-8).",
    401: f"Missing or wrong API key (header {API_KEY_HEADER}).",
    404: "No index of that name.",
    408: "The request body did not arrive within the time limit; the connection is closed.",
    409: "The index store is full.",
    413: "The request body is over the size limit.",
    503: "Too many items are waiting for the model; retry later.",
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorDetail, "description": _ERRORS[code]} for code in codes}


def create_app(predictor: Predictor, limits: Limits | None = None, api_key: str | None = None) -> FastAPI:
    """The service for ``predictor``'s run; requests are merged into batches by one :class:`Batcher`."""
    limits = limits or Limits()
    if api_key is not None:
        check_api_key(api_key)
    batcher = answering_batcher(predictor, limits)
    indexes = IndexStore(limits.max_indexes)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title=f"mtpeft: {predictor.name}", version=__version__, lifespan=lifespan,
                  description=f"Every task of run {predictor.name!r} ({predictor.model_name}) behind one shared "
                              "backbone; see docs/serving.md.",
                  dependencies=[Depends(_key_check(api_key))] if api_key else [],
                  responses=_responses(400, 408, 413, *([401] if api_key else [])))
    app.add_middleware(BodyLimit, max_bytes=limits.max_body_bytes, timeout_s=limits.body_timeout_s)
    for error, code in _STATUS.items():
        app.add_exception_handler(error, _json_error(code))
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]

    @app.get("/healthz", response_model=Health)
    async def healthz() -> Health:
        return Health(batches=batcher.batches, items=batcher.items, queued=batcher.queued, indexes=len(indexes))

    @app.get("/v1/tasks", response_model=TasksResponse)
    async def tasks() -> TasksResponse:
        return TasksResponse(run=predictor.name, model=predictor.model_name, max_length=predictor.max_length, tasks=[
            TaskInfo(name=name, kind=str(spec.kind), metric=spec.metric, threshold=predictor.thresholds.get(name),
                     inputs=input_fields(spec.kind),
                     endpoint="/v1/search" if spec.kind is TaskKind.RETRIEVAL else "/v1/predict")
            for name, spec in sorted(predictor.specs.items())])

    predict_model = predict_request(predictor.specs, limits)
    if predict_model is not None:
        @app.post("/v1/predict", response_model=PredictResponse, response_model_exclude_none=True,
                  responses=_responses(503))
        async def predict(request: predict_model) -> dict[str, Any]:  # type: ignore[valid-type]
            answers = await batcher.submit(request.items)
            return {"results": [predictor.classify(item, logit) for item, logit in answers]}

    search_models = search_requests(predictor.specs, limits)
    if search_models is not None:
        index_model, search_model = search_models

        @app.post("/v1/search/index", response_model=IndexResponse, responses=_responses(409, 503))
        async def upload_index(request: index_model) -> IndexResponse:  # type: ignore[valid-type]
            name, items = request.name, request.items
            indexes.check_room(name)
            vectors, cut = await embed_in_turns(batcher, predictor, [it.code for it in items], limits)
            indexes.put(name, SearchIndex([it.id for it in items], vectors, sum(cut)))
            return IndexResponse(name=name, size=len(items), tasks=sorted(vectors), truncated=sum(cut))

        @app.delete("/v1/search/index/{name}", status_code=204, responses=_responses(404))
        async def delete_index(name: str) -> Response:
            indexes.delete(name)
            return Response(status_code=204)

        @app.post("/v1/search", response_model=SearchResponse, responses=_responses(404, 503))
        async def search(request: search_model) -> SearchResponse:  # type: ignore[valid-type]
            index = indexes.get(request.index)  # 404 before any model work
            [(query, vector)] = await batcher.submit([request])
            return SearchResponse(task=query.task, index=request.index,
                                  hits=index.search(query.task, vector, request.top_k),
                                  truncated=query.truncated)

    return app


def answering_batcher(predictor: Predictor, limits: Limits) -> Batcher[Any, tuple[Encoded, torch.Tensor]]:
    """Requests' items (predict items and search queries alike) tokenised in turns outside the model thread,
    then merged into batches of ONE backbone pass; each answer comes back with its tokenised item."""
    def forward(items: list[Encoded]) -> list[tuple[Encoded, torch.Tensor]]:
        return list(zip(items, predictor.forward(items), strict=True))

    def characters(item: Any) -> int:  # what tokenising an item costs
        return sum(len(getattr(item, name)) for name in input_fields(predictor.specs[item.task].kind))

    return Batcher(forward, limits.max_batch, limits.max_wait_ms, limits.max_queue, prepare=predictor.encode_mixed,
                   cost=characters, max_round_cost=limits.max_tokenize_chars)


async def embed_in_turns(batcher: Batcher[Any, Any], predictor: Predictor, codes: list[str],
                         limits: Limits) -> tuple[dict[str, torch.Tensor], list[bool]]:
    """A search pool embedded a slice at a time (``max_batch`` codes, about ``max_tokenize_chars``), each slice
    its own turn in the model thread, so batches of other requests run between them."""
    parts = [await batcher.call(predictor.embed_pool, codes[start:stop], limits.max_batch)
             for start, stop in slices([len(code) for code in codes], limits.max_batch, limits.max_tokenize_chars)]
    vectors = {task: torch.cat([part[task] for part, _ in parts]) for task in parts[0][0]}
    return vectors, [flag for _, cut in parts for flag in cut]


def slices(costs: list[int], max_items: int, budget: int) -> list[tuple[int, int]]:
    """Consecutive ``(start, stop)`` ranges of at most ``max_items`` whose costs stay within ``budget``
    (a range holds at least one item)."""
    ranges, start, spent = [], 0, 0
    for i, price in enumerate(costs):
        if i > start and (i - start == max_items or spent + price > budget):
            ranges.append((start, i))
            start, spent = i, 0
        spent += price
    return [*ranges, (start, len(costs))] if costs else ranges


def check_api_key(api_key: str) -> None:
    """An empty key would turn authentication off unseen; a non-ASCII one cannot travel in a header."""
    if not api_key:
        raise ConfigError("the API key (--api-key or MTPEFT_API_KEY) is empty; give a key, or unset it to serve "
                          "without one")
    if not (api_key.isascii() and api_key.isprintable()) or api_key != api_key.strip():
        raise ConfigError("the API key (--api-key or MTPEFT_API_KEY) must be printable ASCII without surrounding "
                          "spaces: an HTTP header cannot carry anything else reliably")


def _key_check(api_key: str) -> Callable[..., Coroutine[Any, Any, None]]:
    header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, description="The key `mtpeft serve` was started with.")
    expected = api_key.encode()

    async def check(given: str | None = Security(header)) -> None:
        # constant-time comparison: the response time says nothing about how much of the key matched
        if given is None or not hmac.compare_digest(given.encode(), expected):
            raise HTTPException(401, f"missing or wrong API key (send it in the {API_KEY_HEADER} header)",
                                headers={"WWW-Authenticate": "ApiKey"})

    return check


def _json_error(code: int) -> Callable[[Request, Exception], Coroutine[Any, Any, JSONResponse]]:
    async def handler(_: Request, err: Exception) -> JSONResponse:
        return JSONResponse({"detail": str(err)}, status_code=code)

    return handler


async def _validation_error(_: Request, err: RequestValidationError) -> JSONResponse:
    """FastAPI's 422, with the offending input made writable: NaN/Infinity and lone surrogates parse
    as JSON but cannot be written back as JSON (they would turn a 422 into a 500)."""
    return JSONResponse({"detail": _writable(jsonable_encoder(err.errors()))}, status_code=422)


def _writable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [_writable(v) for v in value]
    if isinstance(value, dict):
        return {k: _writable(v) for k, v in value.items()}
    return value
