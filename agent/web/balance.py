"""Each worker keeps about its share of the keep-alive connections (``serve --workers N``).

Linux deals each new connection to one worker's socket by a hash of its
addresses, and a keep-alive connection then stays with that worker. A few
long-lived connections (a load balancer's pool, a benchmark's 16 clients)
split unevenly: 3 and 13 was seen, and the clients of the busier worker
waited about a third longer at the 95th percentile than with 8 and 8 (and
with 9 and 7, 15-25% longer than with 8 and 8). The workers of one pool
share a count of their open connections; a worker holding more than its
fair share (rounded up) answers with ``Connection: close`` until it does
not, and each client's next connection is dealt again. A browser opens a
new connection without a word.
"""

from __future__ import annotations

import math
from collections.abc import Callable, MutableSequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class Share:
    """This worker's slot in the pool's shared counts, and when to give a connection up.

    Decided at each response from this worker's own count, read then, and the others' as
    they last wrote them: a worker that has not answered lately may show more than it
    holds, which only makes the others give up fewer connections.
    """

    def __init__(
        self, counts: MutableSequence[int], index: int, open_connections: Callable[[], int]
    ) -> None:
        self.counts = counts
        self.index = index
        self.open_connections = open_connections

    def give_one_up(self) -> bool:
        mine = self.open_connections()
        self.counts[self.index] = mine
        return mine > math.ceil(sum(self.counts) / len(self.counts))


class Balance:
    """ASGI middleware: ``Connection: close`` on a response when :class:`Share` says so."""

    def __init__(self, app: ASGIApp, share: Share) -> None:
        self.app = app
        self.share = share

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def closing(message: Message) -> None:
            if message["type"] == "http.response.start" and self.share.give_one_up():
                headers = [(k, v) for k, v in message.get("headers", []) if k != b"connection"]
                message = {**message, "headers": [*headers, (b"connection", b"close")]}
            await send(message)

        await self.app(scope, receive, closing)
