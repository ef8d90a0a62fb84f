"""Kept answers: readers asking at once what one of them is computing are given its answer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from fastapi.responses import Response

from api.reading import Answers

READERS = 8


def asked_at_once(answers: Answers, compute: Callable[[], Response]) -> list[Response]:
    gate = threading.Barrier(READERS)

    def ask(_: int) -> Response:
        gate.wait()
        return answers.made_once(("/v1/alerts", "2021-06-01", (("sedimentation", 1, 40),)), compute)

    with ThreadPoolExecutor(READERS) as pool:
        return list(pool.map(ask, range(READERS)))


def test_readers_asking_at_once_share_one_computation() -> None:
    computed, entered = [], threading.Event()

    def compute() -> Response:
        computed.append(1)
        entered.wait(5)  # the others arrive while it computes
        return Response(b'{"alerts": []}', media_type="application/json")

    timer = threading.Timer(0.3, entered.set)
    timer.start()
    given = asked_at_once(Answers(2**20), compute)
    assert len(computed) == 1
    assert {(r.status_code, bytes(r.body)) for r in given} == {(200, b'{"alerts": []}')}


def test_an_answer_not_kept_is_computed_again_by_the_next_reader() -> None:
    computed: list[int] = []
    lock = threading.Lock()

    def compute() -> Response:
        with lock:
            computed.append(1)
            n = len(computed)
        return Response(b"busy", status_code=503) if n == 1 else Response(b"{}", media_type="application/json")

    given = asked_at_once(Answers(2**20), compute)
    assert sorted(r.status_code for r in given) == [200] * (READERS - 1) + [503]
    assert len(computed) == 2, "after the one not kept, the next computed it and the rest were given that"
