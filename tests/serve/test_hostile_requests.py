"""Requests a hostile or careless client sends: each gets a 4xx that names the field, never a 500."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from mtpeft.errors import ConfigError
from mtpeft.serve import Predictor, create_app
from tests.serve.conftest import API_KEY, LIMITS, search_rows

AUTH = {"X-API-Key": API_KEY, "Content-Type": "application/json"}


def raw_post(url: str, path: str, text: str) -> requests.Response:
    """A body as written (json.dumps would refuse NaN or escape a surrogate differently)."""
    return requests.post(f"{url}{path}", data=text.encode("utf-8"), headers=AUTH, timeout=60)


def errors(response: requests.Response) -> list[dict]:
    assert response.status_code == 422, response.text
    return json.loads(response.text)["detail"]  # strict JSON: no NaN, no lone surrogate


@pytest.mark.parametrize("body", [
    '{"items": [{"task": "overflow", "code": "x", "id": NaN}]}',
    '{"items": [{"task": "overflow", "code": "x", "id": Infinity}]}',
    '{"items": [{"task": "overflow", "code": "x"}], "extra": -Infinity}',
    '{"items": [{"task": "same", "code1": NaN, "code2": "y"}]}',
])
def test_non_finite_numbers_are_a_422(server: str, body: str) -> None:
    assert errors(raw_post(server, "/v1/predict", body))


@pytest.mark.parametrize(("path", "body", "loc"), [
    ("/v1/predict", '{"items": [{"task": "overflow", "code": "a\\ud800b"}]}', ["body", "items", 0, "overflow", "code"]),
    ("/v1/predict", '{"items": [{"task": "same", "code1": "x", "code2": "\\udfff"}]}',
     ["body", "items", 0, "same", "code2"]),
    ("/v1/predict", '{"items": [{"task": "overflow", "code": "x", "id": "\\ud800"}]}',
     ["body", "items", 0, "overflow", "id"]),
    ("/v1/search", '{"task": "find", "index": "i", "query": "\\ud800"}', ["body", "query"]),
    ("/v1/search/index", '{"name": "s", "items": [{"id": "\\ud800", "code": "x"}]}', ["body", "items", 0, "id"]),
])
def test_lone_surrogates_are_a_422_that_names_the_field(server: str, path: str, body: str, loc: list) -> None:
    found = errors(raw_post(server, path, body))
    assert any(e["loc"][:len(loc)] == loc and "unicode" in e["msg"].lower() for e in found), found


def test_a_refused_upload_leaves_no_index_behind(server: str) -> None:
    raw_post(server, "/v1/search/index", '{"name": "bad", "items": [{"id": "\\ud800", "code": "x"}]}')
    missing = raw_post(server, "/v1/search", '{"task": "find", "index": "bad", "query": "q"}')
    assert missing.status_code == 404


@pytest.mark.parametrize("ids", [["a", "b", "a"], [1, "1"], [7, 7]])
def test_duplicate_index_ids_are_refused(server: str, ids: list) -> None:
    items = [{"id": i, "code": row["code"]} for i, row in zip(ids, search_rows(len(ids)), strict=True)]
    response = requests.post(f"{server}/v1/search/index", json={"name": "dup", "items": items}, headers=AUTH,
                             timeout=60)
    (error,) = errors(response)
    assert error["loc"] == ["body", "items"] and "ids must be unique" in error["msg"], error


def test_a_text_over_the_character_limit_is_refused_before_tokenising(server: str) -> None:
    long = "x " * LIMITS.max_text_chars
    for path, body in [("/v1/predict", {"items": [{"task": "overflow", "code": long}]}),
                       ("/v1/search", {"task": "find", "index": "i", "query": long}),
                       ("/v1/search/index", {"name": "s", "items": [{"id": 1, "code": long}]})]:
        response = requests.post(f"{server}{path}", json=body, headers=AUTH, timeout=60)
        assert any(f"at most {LIMITS.max_text_chars} characters" in e["msg"] for e in errors(response))


def test_a_body_that_is_not_utf8_is_a_400(server: str) -> None:
    response = requests.post(f"{server}/v1/predict", data=b'{"items": [{"code": "\xff\xfe"}]}', headers=AUTH,
                             timeout=60)
    assert response.status_code in (400, 422) and "detail" in response.json()


def test_openapi_lists_every_status_a_route_returns(server: str) -> None:
    paths = requests.get(f"{server}/openapi.json", headers=AUTH, timeout=10).json()["paths"]
    expected = {("/v1/predict", "post"): {"200", "400", "401", "408", "413", "422", "503"},
                ("/v1/search", "post"): {"200", "400", "401", "404", "408", "413", "422", "503"},
                ("/v1/search/index", "post"): {"200", "400", "401", "408", "409", "413", "422", "503"},
                ("/v1/search/index/{name}", "delete"): {"204", "400", "401", "404", "408", "413", "422"}}
    for (path, method), codes in expected.items():
        assert set(paths[path][method]["responses"]) == codes, (path, paths[path][method]["responses"].keys())


@pytest.mark.parametrize("key", ["", "schlüssel", " padded "])
def test_an_unusable_api_key_is_refused_at_start(predictor: Predictor, key: str) -> None:
    with pytest.raises(ConfigError, match="API key"):
        create_app(predictor, LIMITS, api_key=key)


def test_an_empty_api_key_variable_does_not_turn_authentication_off(tiny_run) -> None:
    env = {**os.environ, "MTPEFT_API_KEY": ""}
    done = subprocess.run([sys.executable, "-m", "mtpeft", "serve", str(tiny_run)], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "API key" in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_a_full_queue_answers_503_and_the_server_recovers(predictor: Predictor) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from mtpeft.serve import BackgroundServer, Limits

    limits = Limits(max_batch=2, max_wait_ms=300, max_items=4, max_queue=4)
    body = {"items": [{"task": "overflow", "code": f"int f{i}() {{ return {i}; }}"} for i in range(4)]}
    with BackgroundServer(create_app(predictor, limits)) as url, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: requests.post(f"{url}/v1/predict", json=body, timeout=60), range(8)))
        codes = sorted(r.status_code for r in statuses)
        assert 200 in codes and 503 in codes and set(codes) <= {200, 503}, codes
        busy = next(r for r in statuses if r.status_code == 503)
        assert "retry" in busy.json()["detail"]
        assert requests.post(f"{url}/v1/predict", json=body, timeout=60).status_code == 200  # nothing stuck


def test_an_index_over_the_item_limit_is_refused(server: str) -> None:
    items = [{"id": i, "code": f"def f{i}(): return {i}"} for i in range(LIMITS.max_index_items + 1)]
    response = requests.post(f"{server}/v1/search/index", json={"name": "big", "items": items}, headers=AUTH,
                             timeout=60)
    assert any(e["loc"] == ["body", "items"] and f"at most {LIMITS.max_index_items}" in e["msg"]
               for e in errors(response))
