"""When a worker gives a keep-alive connection up (``agent.web.balance``): the rule, and the
header the middleware puts on the response. The pool and real clients are in
``test_workers.py``."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from starlette.types import Message, Receive, Scope, Send

from agent.web.balance import Balance, Share


@pytest.mark.parametrize(
    ("mine", "others", "gives_up"),
    [
        (13, [3], True),
        (9, [7], True),
        (8, [8], False),
        (9, [8], False),
        (3, [13], False),
        (5, [3, 2], True),
        (4, [4, 3], False),
        (1, [0], False),
        (0, [0], False),
    ],
)
def test_a_worker_gives_one_up_when_it_holds_more_than_its_share(
    mine: int, others: list[int], gives_up: bool
) -> None:
    counts = [0, *others]
    share = Share(counts, 0, lambda: mine)
    assert share.give_one_up() is gives_up
    assert counts == [mine, *others]


async def _answer(scope: Scope, receive: Receive, send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain"), (b"connection", b"keep-alive")],
        }
    )
    await send({"type": "http.response.body", "body": b"ok"})


async def _headers_of(app: Balance) -> list[tuple[bytes, bytes]]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    async def send(message: Message) -> None:
        sent.append(message)

    await app({"type": "http", "method": "GET", "path": "/"}, receive, send)
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    return list(sent[0]["headers"])


def _served(app: Balance) -> list[tuple[bytes, bytes]]:
    """In an event loop of its own thread: the browser tests keep one running in this one."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, _headers_of(app)).result()


def test_the_response_says_connection_close_only_when_the_worker_gives_one_up() -> None:
    over = _served(Balance(_answer, Share([0, 3], 0, lambda: 13)))
    within = _served(Balance(_answer, Share([0, 8], 0, lambda: 8)))
    assert over == [(b"content-type", b"text/plain"), (b"connection", b"close")]
    assert within == [(b"content-type", b"text/plain"), (b"connection", b"keep-alive")]
