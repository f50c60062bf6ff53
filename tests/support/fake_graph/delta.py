"""Delta rounds shared by messages and calendar views: state tokens, paging, expiry.

From "Use delta query to track changes in Microsoft Graph data"
(/graph/delta-query-overview): a round is one or more GETs; every answer
carries an ``@odata.nextLink`` (``$skiptoken``, more pages in this round) or an
``@odata.deltaLink`` (``$deltatoken``, the round is over; the next round starts
from it). Tokens are opaque and encode the initial request's query options
(``$select``, ``changeType``, ``startDateTime``...), so later requests need
not repeat them. An expired token answers a 40X error with a code such as
``syncStateNotFound`` (the fake: 410 by default); "synchronization reset"
answers 410 with a ``Location`` header holding the initial request URL with
an empty ``$deltatoken``.

Here a round's list of entries is fixed when it starts (a snapshot of keys);
pages render each key as it is when the page is served, so a change made
during a round shows in the page that carries the item or in the next round
(Graph allows such replays).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from tests.support.fake_graph.common import GraphError

Key = tuple[str, ...]


@dataclass
class DeltaState:
    """What a ``$skiptoken`` or ``$deltatoken`` stands for."""

    resource: str
    """``messages`` or ``events``."""
    user_id: str
    link_path: str
    """The request path the links repeat (``users/x/mailFolders('y')/messages/delta``)."""
    query: Mapping[str, str]
    """The initial request's query options (lower-case names, no ``$``)."""
    upto_seq: int
    """The change counter when the round started; the next round starts after it."""
    since_seq: int | None = None
    keys: Sequence[Key] = ()
    offset: int = 0
    final: bool = False
    """A ``$deltatoken`` (round over) rather than a ``$skiptoken``."""
    expired: tuple[int, str, bool] | None = None
    """``(status, code, with_location)`` once expired."""


@dataclass
class DeltaTokens:
    """Every state token the server issued."""

    states: dict[str, DeltaState] = field(default_factory=dict)

    def issue(self, state: DeltaState) -> str:
        token = secrets.token_urlsafe(24)
        self.states[token] = state
        return token

    def expire(
        self,
        *,
        user_id: str | None = None,
        resource: str | None = None,
        status: int = 410,
        code: str = "syncStateNotFound",
        location: bool = False,
    ) -> int:
        """Expire issued tokens (of a user, of a resource); returns how many."""
        count = 0
        for state in self.states.values():
            if user_id is not None and state.user_id != user_id:
                continue
            if resource is not None and state.resource != resource:
                continue
            state.expired = (status, code, location)
            count += 1
        return count


_MESSAGES = {
    "syncStateNotFound": "The sync state generation is not found. The delta token is expired "
    "and data must be synchronized again.",
    "resyncRequired": "The delta token is no longer valid, and the app must reset the sync state.",
    "SyncStateInvalid": "The sync state is invalid.",
}


def lookup(tokens: DeltaTokens, token: str, base_url: str) -> DeltaState:
    state = tokens.states.get(token)
    if state is None:
        raise GraphError(410, "syncStateNotFound", _MESSAGES["syncStateNotFound"])
    if state.expired is not None:
        status, code, location = state.expired
        headers = {}
        if location:
            headers["Location"] = link(base_url, state.link_path, {**state.query, "deltatoken": ""})
        raise GraphError(
            status, code, _MESSAGES.get(code, "The delta token is expired."), headers=headers
        )
    return state


_CASED = {
    "changetype": "changeType",
    "startdatetime": "startDateTime",
    "enddatetime": "endDateTime",
}


def link(base_url: str, path: str, query: Mapping[str, str]) -> str:
    """An absolute link with OData options written ``$name``."""
    odata = {"select", "top", "skip", "filter", "orderby", "skiptoken", "deltatoken", "expand"}
    pairs = [(f"${k}" if k in odata else _CASED.get(k, k), v) for k, v in query.items()]
    return f"{base_url}/{path}?" + urlencode(pairs, quote_via=quote, safe="$'(),:")


def run_round(
    *,
    tokens: DeltaTokens,
    base_url: str,
    resource: str,
    user_id: str,
    link_path: str,
    params: Mapping[str, str],
    encoded: Sequence[str],
    page: Callable[[Mapping[str, str]], int],
    current_seq: int,
    collect: Callable[[Mapping[str, str], int | None], list[Key]],
    render: Callable[[Key, Mapping[str, str]], dict[str, Any]],
) -> dict[str, Any]:
    """Answer one delta request: start or continue a round, render one page.

    ``encoded`` names the query options a token remembers; ``collect(query,
    since)`` lists the round's keys (everything when ``since`` is ``None``);
    ``render(key, query)`` draws one entry; ``page(query)`` is the page size."""
    skip = params.get("skiptoken")
    delta = params.get("deltatoken")
    if skip:
        state = lookup(tokens, skip, base_url)
        query, keys, offset, upto = state.query, state.keys, state.offset, state.upto_seq
    else:
        since: int | None = None
        if delta:
            previous = lookup(tokens, delta, base_url)
            query, since = previous.query, previous.upto_seq
        else:
            query = {k: params[k] for k in encoded if k in params}
        upto = current_seq
        keys = collect(query, since)
        offset = 0
    size = page(query)
    chunk = keys[offset : offset + size]
    body: dict[str, Any] = {
        "@odata.context": f"{base_url}/$metadata#Collection({resource[:-1]})",
        "value": [render(key, query) for key in chunk],
    }
    if offset + size < len(keys):
        state = DeltaState(resource, user_id, link_path, query, upto, None, keys, offset + size)
        body["@odata.nextLink"] = link(base_url, link_path, {"skiptoken": tokens.issue(state)})
    else:
        state = DeltaState(resource, user_id, link_path, query, upto, final=True)
        body["@odata.deltaLink"] = link(base_url, link_path, {"deltatoken": tokens.issue(state)})
    return body
