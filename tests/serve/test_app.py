"""The real server (uvicorn on loopback) through a real HTTP client: every route, every refusal."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests
import torch

from mtpeft.serve import BackgroundServer, Limits, Predictor, create_app
from mtpeft.serve.app import slices
from mtpeft.serve.schemas import CodeInput, PairInput, QueryInput
from tests.serve.conftest import API_KEY, LIMITS, MAX_LENGTH, binary_rows, pair_rows, search_rows

AUTH = {"X-API-Key": API_KEY}


def post(url: str, path: str, body: object, headers: dict | None = None) -> requests.Response:
    return requests.post(f"{url}{path}", json=body, headers=AUTH if headers is None else headers, timeout=60)


def direct(predictor: Predictor, task: str, inputs: list) -> list[float]:
    """Probabilities from the predictor itself, one input per pass (no batching at all)."""
    return [float(torch.sigmoid(predictor.forward(predictor.encode(task, [x]))[0])) for x in inputs]


def detail_locs(response: requests.Response) -> list[list]:
    return [e["loc"] for e in response.json()["detail"]]


def test_health_and_tasks(server, predictor):
    health = requests.get(f"{server}/healthz", headers=AUTH, timeout=10).json()
    assert health["status"] == "ok" and {"batches", "items", "queued", "indexes"} <= set(health)
    tasks = requests.get(f"{server}/v1/tasks", headers=AUTH, timeout=10).json()
    assert tasks["run"] == "serve-tiny" and tasks["max_length"] == MAX_LENGTH
    by_name = {t["name"]: t for t in tasks["tasks"]}
    assert by_name["overflow"]["inputs"] == ["code"] and by_name["same"]["inputs"] == ["code1", "code2"]
    assert by_name["find"] == {"name": "find", "kind": "retrieval", "metric": "mrr", "threshold": None,
                               "inputs": ["query"], "endpoint": "/v1/search"}
    assert by_name["overflow"]["threshold"] == pytest.approx(predictor.thresholds["overflow"])
    docs = requests.get(f"{server}/openapi.json", timeout=10).json()
    assert {"/v1/predict", "/v1/search", "/v1/search/index", "/v1/tasks", "/healthz"} <= set(docs["paths"])


def test_mixed_tasks_in_one_request(server, predictor):
    code = [r["text"] for r in binary_rows(3)]
    pairs = [(r["a"], r["b"]) for r in pair_rows(2)]
    items = [{"task": "overflow", "code": code[0], "id": "a"}, {"task": "same", "code1": pairs[0][0],
                                                                "code2": pairs[0][1]},
             {"task": "overflow", "code": code[1], "id": 2}, {"task": "same", "code1": pairs[1][0],
                                                              "code2": pairs[1][1], "id": "p"},
             {"task": "overflow", "code": code[2] + " x" * 300}]
    response = post(server, "/v1/predict", {"items": items})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["task"] for r in results] == ["overflow", "same", "overflow", "same", "overflow"]
    assert [r.get("id") for r in results] == ["a", None, 2, "p", None]
    assert [r["truncated"] for r in results] == [False, False, False, False, True]
    expected = direct(predictor, "overflow", [CodeInput(code=c) for c in (code[0], code[1], code[2] + " x" * 300)])
    expected_pairs = direct(predictor, "same", [PairInput(code1=a, code2=b) for a, b in pairs])
    got = [r["probability"] for r in results]
    np.testing.assert_allclose([got[0], got[2], got[4]], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose([got[1], got[3]], expected_pairs, rtol=1e-5, atol=1e-6)
    for r in results:
        assert r["label"] == int(r["probability"] >= predictor.thresholds[r["task"]])


@pytest.mark.parametrize(("body", "status", "loc", "message"), [
    ({"items": [{"task": "nope", "code": "x"}]}, 422, ["body", "items", 0], "does not match any of the expected tags"),
    ({"items": [{"task": "find", "query": "x"}]}, 422, ["body", "items", 0], "'overflow', 'same'"),
    ({"items": [{"task": "overflow", "cdoe": "x"}]}, 422, ["body", "items", 0, "overflow", "code"], "Field required"),
    ({"items": [{"task": "same", "code1": "x"}]}, 422, ["body", "items", 0, "same", "code2"], "Field required"),
    ({"items": [{"task": "overflow", "code": 12}]}, 422, ["body", "items", 0, "overflow", "code"], "valid string"),
    ({"items": [{"task": "overflow", "code": "x", "id": [1]}]}, 422, ["body", "items", 0, "overflow", "id"], ""),
    ({"items": [{"task": "overflow", "code": "x"}] * (LIMITS.max_items + 1)}, 422, ["body", "items"], "at most 8"),
    ({"items": []}, 422, ["body", "items"], "at least 1"),
    ({"item": []}, 422, ["body", "items"], "Field required"),
    ([1, 2], 422, ["body"], "valid dictionary"),
])
def test_bad_requests_name_the_field(server, body, status, loc, message):
    response = post(server, "/v1/predict", body)
    assert response.status_code == status, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][:len(loc)] == loc and message in e["msg"] for e in errors), errors


def test_too_long_body_is_refused_before_parsing(server):
    body = {"items": [{"task": "overflow", "code": "x" * (LIMITS.max_body_bytes + 10)}]}
    response = post(server, "/v1/predict", body)
    assert response.status_code == 413 and "limit is 65536" in response.json()["detail"]
    chunked = requests.post(f"{server}/v1/predict", data=iter([b"{" + b" " * 40_000] * 3),
                            headers={**AUTH, "Content-Type": "application/json"}, timeout=30)
    assert chunked.status_code == 413  # no Content-Length: counted while reading
    broken = requests.post(f"{server}/v1/predict", data=b'{"items": [', headers=AUTH, timeout=30)
    assert broken.status_code == 422 and detail_locs(broken)[0][0] == "body"


@pytest.mark.parametrize("headers", [{}, {"X-API-Key": "wrong"}, {"X-API-Key": API_KEY + "x"}])
def test_every_route_needs_the_api_key(server, headers):
    for method, path, body in [("get", "/healthz", None), ("get", "/v1/tasks", None),
                               ("post", "/v1/predict", {"items": [{"task": "overflow", "code": "x"}]}),
                               ("post", "/v1/search", {"task": "find", "index": "i", "query": "q"}),
                               ("post", "/v1/search/index", {"name": "i", "items": [{"id": 1, "code": "x"}]}),
                               ("delete", "/v1/search/index/i", None)]:
        response = requests.request(method, f"{server}{path}", json=body, headers=headers, timeout=10)
        assert response.status_code == 401, (path, response.text)
        assert "X-API-Key" in response.json()["detail"]


def test_concurrent_requests_get_their_own_answers_in_merged_batches(server, predictor):
    rows, pairs = binary_rows(16), pair_rows(16)
    bodies = [{"items": [{"task": "overflow", "code": rows[2 * t]["text"], "id": f"{t}-0"},
                         {"task": "same", "code1": pairs[t]["a"], "code2": pairs[t]["b"], "id": f"{t}-1"},
                         {"task": "overflow", "code": rows[2 * t + 1]["text"] + f" int n{t};", "id": f"{t}-2"}]}
              for t in range(8)]
    before = requests.get(f"{server}/healthz", headers=AUTH, timeout=10).json()
    answers: dict[int, list] = {}
    start = threading.Barrier(8)

    def client(t: int) -> None:
        start.wait()
        answers[t] = post(server, "/v1/predict", bodies[t]).json()["results"]

    threads = [threading.Thread(target=client, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = requests.get(f"{server}/healthz", headers=AUTH, timeout=10).json()
    for t, body in enumerate(bodies):
        assert [r["id"] for r in answers[t]] == [f"{t}-0", f"{t}-1", f"{t}-2"]
        items = body["items"]
        expected = direct(predictor, "overflow", [CodeInput(code=items[0]["code"]), CodeInput(code=items[2]["code"])])
        expected += direct(predictor, "same", [PairInput(code1=items[1]["code1"], code2=items[1]["code2"])])
        got = [answers[t][0]["probability"], answers[t][2]["probability"], answers[t][1]["probability"]]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert after["items"] - before["items"] == 24
    assert after["batches"] - before["batches"] < 8  # requests were merged into shared passes


def test_search_index_lifecycle(server, predictor):
    rows = search_rows(12)
    pool = [{"id": f"fn{i}", "code": r["code"]} for i, r in enumerate(rows)]
    response = post(server, "/v1/search/index", {"name": "pool-a", "items": pool})
    assert response.json() == {"name": "pool-a", "size": 12, "tasks": ["find"], "truncated": 0}
    hits = post(server, "/v1/search", {"task": "find", "index": "pool-a", "query": rows[3]["query"], "top_k": 5})
    assert hits.status_code == 200, hits.text
    body = hits.json()
    assert body["task"] == "find" and body["index"] == "pool-a" and len(body["hits"]) == 5 and not body["truncated"]
    vectors, _ = predictor.embed_pool([r["code"] for r in rows], batch_size=4)
    query = predictor.forward(predictor.encode("find", [QueryInput(query=rows[3]["query"])]))[0]
    scores = (vectors["find"] @ query).numpy()
    best = np.argsort(-scores, kind="stable")[:5]
    assert [h["id"] for h in body["hits"]] == [f"fn{i}" for i in best]
    np.testing.assert_allclose([h["score"] for h in body["hits"]], scores[best], rtol=1e-5, atol=1e-6)

    missing = post(server, "/v1/search", {"task": "find", "index": "nope", "query": "q"})
    assert missing.status_code == 404 and "no index 'nope'" in missing.json()["detail"]
    assert post(server, "/v1/search", {"task": "overflow", "index": "pool-a", "query": "q"}).status_code == 422
    too_many = post(server, "/v1/search", {"task": "find", "index": "pool-a", "query": "q", "top_k": 21})
    assert too_many.status_code == 422 and detail_locs(too_many) == [["body", "top_k"]]
    bad_pool = post(server, "/v1/search/index", {"name": "b", "items": [{"id": 1}]})
    assert detail_locs(bad_pool) == [["body", "items", 0, "code"]]
    bad_name = post(server, "/v1/search/index", {"name": "../etc/passwd", "items": pool})
    assert detail_locs(bad_name) == [["body", "name"]]

    assert post(server, "/v1/search/index", {"name": "pool-b", "items": pool[:2]}).status_code == 200
    full = post(server, "/v1/search/index", {"name": "pool-c", "items": pool[:2]})
    assert full.status_code == 409 and "2 indexes are loaded" in full.json()["detail"]
    assert post(server, "/v1/search/index", {"name": "pool-b", "items": pool[:3]}).json()["size"] == 3  # replace
    assert requests.delete(f"{server}/v1/search/index/pool-b", headers=AUTH, timeout=10).status_code == 204
    assert requests.delete(f"{server}/v1/search/index/pool-b", headers=AUTH, timeout=10).status_code == 404
    assert post(server, "/v1/search/index", {"name": "pool-c", "items": pool[:2]}).status_code == 200
    for name in ("pool-a", "pool-c"):  # leave the (shared) server as found
        assert requests.delete(f"{server}/v1/search/index/{name}", headers=AUTH, timeout=10).status_code == 204


def test_merged_model_served_without_a_key_answers_alike(tiny_run, server, predictor):
    merged = Predictor.from_run(tiny_run, merge=True)
    items = [{"task": "overflow", "code": r["text"]} for r in binary_rows(3)]
    items += [{"task": "same", "code1": r["a"], "code2": r["b"]} for r in pair_rows(3)]
    with BackgroundServer(create_app(merged)) as open_url:
        got = post(open_url, "/v1/predict", {"items": items}, headers={}).json()["results"]
    reference = post(server, "/v1/predict", {"items": items}).json()["results"]
    np.testing.assert_allclose([r["probability"] for r in got], [r["probability"] for r in reference],
                               rtol=1e-4, atol=1e-5)


class Spy:
    """Wraps a predictor method: logs each call (name, item ids or texts); with ``hold``, the first call waits
    until ``release`` is set."""

    def __init__(self, predictor: Predictor, name: str, log: list, hold: bool = False) -> None:
        self.fn, self.name, self.log = getattr(predictor, name), name, log
        self.started, self.release = threading.Event(), threading.Event()
        if not hold:
            self.release.set()

    def __call__(self, items, *args):
        # an item's id: Encoded.ident after tokenising, the request item's id before; a pool's codes as they are
        self.log.append((self.name, [getattr(item, "ident", getattr(item, "id", item)) for item in items]))
        self.started.set()
        assert self.release.wait(30)
        return self.fn(items, *args)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def spy_on(predictor: Predictor, monkeypatch, log: list, held: str) -> dict[str, Spy]:
    spies = {name: Spy(predictor, name, log, hold=name == held) for name in ("encode_mixed", "forward", "embed_pool")}
    for name, spy in spies.items():
        monkeypatch.setattr(predictor, name, spy)
    return spies


def prepared(log: list, ident) -> bool:
    return any(name == "encode_mixed" and ident in ids for name, ids in log)


def test_a_small_request_is_answered_between_a_large_requests_batches(predictor, monkeypatch):
    rows, pair = binary_rows(8), pair_rows(1)[0]
    large = {"items": [{"task": "overflow", "code": r["text"], "id": f"L{i}"} for i, r in enumerate(rows)]}
    small = {"items": [{"task": "same", "code1": pair["a"], "code2": pair["b"], "id": "small"}]}
    expected = direct(predictor, "overflow", [CodeInput(code=r["text"]) for r in rows])
    log: list = []
    forward = spy_on(predictor, monkeypatch, log, held="forward")["forward"]
    with BackgroundServer(create_app(predictor, Limits(max_batch=2, max_wait_ms=1, max_items=8))) as url, \
            ThreadPoolExecutor(2) as clients:
        big = clients.submit(post, url, "/v1/predict", large, {})
        assert forward.started.wait(30)  # the first of four batches holds the model
        little = clients.submit(post, url, "/v1/predict", small, {})
        wait_until(lambda: prepared(log, "small"), "the small request to be tokenised")
        forward.release.set()
        big, little = big.result().json()["results"], little.result().json()["results"]
    batches = [ids for name, ids in log if name == "forward"]
    assert batches[:2] == [["L0", "L1"], ["L2", "small"]]  # its turn comes in the next batch, not the fifth
    assert [r["id"] for r in big] == [f"L{i}" for i in range(8)] and little[0]["id"] == "small"
    np.testing.assert_allclose([r["probability"] for r in big], expected, rtol=1e-5, atol=1e-6)


def test_an_index_upload_is_embedded_in_slices_with_other_batches_between(predictor, monkeypatch):
    rows = search_rows(10)
    query = rows[3]["query"]
    whole, _ = predictor.embed_pool([r["code"] for r in rows], batch_size=16)
    vector = predictor.forward(predictor.encode("find", [QueryInput(query=query)]))[0]
    scores = sorted((whole["find"] @ vector).tolist(), reverse=True)
    log: list = []
    embed = spy_on(predictor, monkeypatch, log, held="embed_pool")["embed_pool"]
    pool_items = [{"id": i, "code": r["code"]} for i, r in enumerate(rows)]
    with BackgroundServer(create_app(predictor, Limits(max_batch=4, max_wait_ms=1))) as url, \
            ThreadPoolExecutor(2) as clients:
        upload = clients.submit(post, url, "/v1/search/index", {"name": "big", "items": pool_items}, {})
        assert embed.started.wait(30)  # the first slice holds the model thread
        item = clients.submit(post, url, "/v1/predict", {"items": [{"task": "overflow", "code": "x", "id": "s"}]}, {})
        wait_until(lambda: prepared(log, "s") and requests.get(f"{url}/healthz", timeout=10).json()["queued"] == 0,
                   "the small request's batch to wait for the model thread")
        embed.release.set()
        assert upload.result().json()["size"] == 10 and item.result().status_code == 200
        hits = post(url, "/v1/search", {"task": "find", "index": "big", "query": query, "top_k": 10}, {}).json()
    model_work = [(name, len(ids)) for name, ids in log if name != "encode_mixed"]
    assert model_work[:4] == [("embed_pool", 4), ("forward", 1), ("embed_pool", 4), ("embed_pool", 2)]
    np.testing.assert_allclose([h["score"] for h in hits["hits"]], scores, rtol=1e-5, atol=1e-6)  # as one pool


@pytest.mark.parametrize(("costs", "max_items", "budget", "expected"), [
    ([1] * 5, 2, 100, [(0, 2), (2, 4), (4, 5)]),
    ([5, 5, 5, 1, 1], 10, 6, [(0, 1), (1, 2), (2, 4), (4, 5)]),
    ([50, 1], 10, 6, [(0, 1), (1, 2)]),  # an item over the budget still gets a slice of its own
    ([], 4, 10, []),
])
def test_slices_bound_items_and_cost(costs, max_items, budget, expected):
    assert slices(costs, max_items, budget) == expected
