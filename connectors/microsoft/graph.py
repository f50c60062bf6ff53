"""The HTTP client under the Microsoft connectors: tokens, retries, JSON batching and counts.

Every request carries a bearer token from a :class:`~connectors.microsoft.auth.TokenSource`;
a 401 gets one more try with a fresh token before it counts as a refused
grant. Failures are read by :func:`connectors.microsoft.errors.classify` and
retried by :class:`connectors.retry.Retrier`, which honours ``Retry-After``
and whose budget each answer renews.

JSON batching ("Combine multiple HTTP requests using JSON batching") sends up
to 20 requests in one ``POST /$batch``. Graph runs a batch's parts
independently and throttles them one by one, so a 200 batch may hold 429 or
503 parts: those alone are sent again, after the longest ``Retry-After`` they
named. One connector makes one request at a time, so a mailbox never sees
more concurrent requests from it than a batch's parts (Outlook allows four
per app and mailbox, and answers the rest 429, which is retried as above).

Counts per run: HTTP round trips, batch parts, retries; shown in ``status``.
Not thread-safe: one client per connector, used by one thread at a time.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from connectors.errors import ConnectorError
from connectors.microsoft.auth import TokenSource
from connectors.microsoft.errors import GraphHttpError, classify, classify_exception
from connectors.retry import Action, Retrier, RetryPolicy, Verdict

MAX_BATCH = 20
""""JSON batch requests are currently limited to 20 individual requests"."""
TIMEOUT = 60.0


@dataclass(frozen=True)
class Part:
    """One request of a batch: an id unique within the batch and a URL relative to the
    version root (``/users/{id}/messages/{id}/$value``)."""

    id: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PartAnswer:
    status: int
    headers: Mapping[str, str]
    body: Any

    def content(self) -> bytes:
        """The body of a non-JSON answer (``$value``), which batching base64-encodes."""
        if isinstance(self.body, str):
            return base64.b64decode(self.body, validate=True)
        raise ValueError(f"expected a base64 body, got {type(self.body).__name__}")


class GraphClient:
    """Requests to one Graph endpoint with one connector's tokens and retry budget."""

    def __init__(
        self,
        tokens: TokenSource,
        endpoint: str,
        *,
        retry_policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rand: Callable[[], float] = random.random,
        timeout: float = TIMEOUT,
        auth_hint: str = "",
        http: requests.Session | None = None,
    ) -> None:
        self.endpoint = endpoint.rstrip("/")
        self._tokens = tokens
        self._policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._timeout = timeout
        self._auth_hint = auth_hint
        self._http = http or requests.Session()
        self.counts: Counter[str] = Counter()
        """This run's requests: single ones (``requests``), ``$batch`` round trips
        (``batches``) and the parts they carried (``batch parts``), retries included."""
        self._retrier = self._new_retrier()
        self._part_rounds = self._parts_resent = 0

    @property
    def retries(self) -> int:
        """Requests of the last (or current) run sent again, each batch part re-sent
        counted as one (a round of re-sent parts is one backoff of the retrier)."""
        return self._retrier.retries - self._part_rounds + self._parts_resent

    @property
    def round_trips(self) -> int:
        return self.counts["requests"] + self.counts["batches"]

    def units_spent(self) -> dict[str, int]:
        """What Graph's throttling meters: each request, and each part of a batch (which
        Graph evaluates one by one), not the batch envelope."""
        return {k: v for k, v in self.counts.items() if k != "batches" and v}

    def start_run(self) -> None:
        self.counts.clear()
        self._retrier = self._new_retrier()
        self._part_rounds = self._parts_resent = 0

    def close(self) -> None:
        self._http.close()

    def get(
        self,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        missing: type[ConnectorError] = ConnectorError,
    ) -> dict[str, Any]:
        """GET a JSON resource; ``url`` is absolute (a nextLink) or relative to the endpoint."""
        target = url if url.startswith("https://") else f"{self.endpoint}{url}"

        def attempt() -> dict[str, Any]:
            answer = self._send("GET", target, params=params, headers=headers)
            body: dict[str, Any] = answer.json()
            return body

        return self._retrier.call(attempt, missing=missing)

    def batch(self, parts: Sequence[Part]) -> dict[str, PartAnswer]:
        """Each part's answer, by id, in as few round trips as the batch limit allows;
        throttled and failed-over parts are sent again until answered or the budget ends."""
        answers: dict[str, PartAnswer] = {}
        for start in range(0, len(parts), MAX_BATCH):
            answers.update(self._batch_of_twenty(parts[start : start + MAX_BATCH]))
        return answers

    def _batch_of_twenty(self, parts: Sequence[Part]) -> dict[str, PartAnswer]:
        answers: dict[str, PartAnswer] = {}
        pending = list(parts)
        attempt = 0
        while pending:
            body = {
                "requests": [
                    {"id": p.id, "method": "GET", "url": p.url, "headers": dict(p.headers)}
                    for p in pending
                ]
            }
            self.counts["batch parts"] += len(pending)

            def post(payload: dict[str, Any] = body) -> list[dict[str, Any]]:
                answer = self._send("POST", f"{self.endpoint}/$batch", payload=payload)
                responses: list[dict[str, Any]] = answer.json().get("responses", [])
                return responses

            again: list[Part] = []
            worst: Verdict | None = None
            by_id = {p.id: p for p in pending}
            for response in self._retrier.call(post):
                part_id = str(response.get("id"))
                if part_id not in by_id:
                    continue
                status = int(response.get("status", 0))
                headers = {str(k): str(v) for k, v in (response.get("headers") or {}).items()}
                verdict = (
                    classify(status, _json_body(response.get("body")), headers)
                    if status >= 400
                    else None
                )
                if verdict is not None and verdict.action is Action.RETRY:
                    again.append(by_id.pop(part_id))
                    worst = _longer_wait(worst, verdict)
                    continue
                by_id.pop(part_id)
                answers[part_id] = PartAnswer(status, headers, response.get("body"))
            again.extend(by_id.values())  # parts the answer left out: ask again
            if again and worst is None:
                worst = Verdict(Action.RETRY, None, "missingParts", "the batch left parts out")
            if worst is not None and again:
                self._retrier.backoff(worst, attempt)
                self._part_rounds += 1
                self._parts_resent += len(again)
                attempt += 1
            pending = again
        return answers

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        payload: Any = None,
    ) -> requests.Response:
        """One request; a 401 is tried once more with a new token."""
        for fresh in (False, True):
            token = self._tokens.token()
            sent = {"Authorization": f"Bearer {token}", **(headers or {})}
            self.counts["batches" if url.endswith("/$batch") else "requests"] += 1
            answer = self._http.request(
                method, url, params=params, headers=sent, json=payload, timeout=self._timeout
            )
            if answer.status_code == 401 and not fresh:
                self._tokens.stale(token)
                continue
            if answer.status_code >= 400:
                raise GraphHttpError(answer.status_code, answer.content, answer.headers)
            return answer
        raise AssertionError("unreachable")

    def _new_retrier(self) -> Retrier:
        return Retrier(
            self._policy,
            classify=classify_exception,
            sleep=self._sleep,
            rand=self._rand,
            auth_hint=self._auth_hint,
        )


class GraphConnector:
    """What the Microsoft connectors share: one user's mailbox or calendar through one
    client, whose counts of the last run ``status`` shows."""

    def __init__(self, name: str, account: str, client: GraphClient) -> None:
        self.name = name
        self.account = account.strip().lower()
        self.client = client

    @property
    def retries(self) -> int:
        return self.client.retries

    def units_spent(self) -> dict[str, int]:
        return self.client.units_spent()

    def close(self) -> None:
        self.client.close()

    def _user(self) -> str:
        """The user's path segment: ``/users/{upn}`` (Graph takes a UPN for the id)."""
        return f"/users/{quote(self.account, safe='@')}"


def _json_body(body: Any) -> bytes | str | Mapping[str, Any]:
    if isinstance(body, Mapping | str | bytes):
        return body
    return json.dumps(body)


def _longer_wait(current: Verdict | None, candidate: Verdict) -> Verdict:
    if current is None or (candidate.retry_after or 0) > (current.retry_after or 0):
        return candidate
    return current
