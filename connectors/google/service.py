"""The Google API client under the Gmail and Calendar connectors, with one run's quota and retries.

The service is built from the discovery document packaged with
google-api-python-client (no discovery request at run time) with its
``rootUrl`` moved to the endpoint. That moves every method *and* the batch
URI; ``client_options={"api_endpoint": ...}`` would replace ``servicePath``
as well and leave batch requests on Google's host.

Requests go through one ``httplib2.Http`` with a timeout. httplib2 reads
proxy settings from the environment but never bypasses them for a loopback
address, so a loopback endpoint (a test's fake server) is reached without
a proxy.

:class:`GoogleApiClient` is what both connectors build on: the service, built
once on first use, and one run's :class:`~connectors.google.quota.QuotaMeter` and
:class:`~connectors.google.errors.Retrier`, which every API call goes through.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import google.auth.credentials
import google_auth_httplib2
import httplib2
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document

from connectors.errors import ConnectorError
from connectors.google.auth import reauth_hint
from connectors.google.errors import classify_exception
from connectors.google.quota import QuotaMeter
from connectors.retry import Action, Retrier, RetryPolicy


def build_service(
    api: str,
    version: str,
    endpoint: str,
    credentials: google.auth.credentials.Credentials,
    *,
    timeout: float,
) -> tuple[Any, httplib2.Http]:
    """The service for ``api``/``version`` at ``endpoint``, and the ``Http`` under it.

    The ``Http`` is returned so that a caller can refresh the credentials
    through it (``google_auth_httplib2.Request``) rather than through a new,
    default one. It is not thread-safe, and neither is the service.
    """
    document = json.loads(discovery_cache.get_static_doc(api, version))
    document["rootUrl"] = endpoint.rstrip("/") + "/"
    proxy: Any = None if is_loopback(endpoint) else httplib2.proxy_info_from_environment
    http = httplib2.Http(timeout=timeout, proxy_info=proxy)
    authorized = google_auth_httplib2.AuthorizedHttp(credentials, http=http)
    return build_from_document(document, http=authorized), http


def unanswered(exc: BaseException) -> bool:
    """Whether a failed call got no HTTP answer (a network error): Google meters only
    what it answers, so such a call costs no quota."""
    verdict = classify_exception(exc)
    return verdict is not None and verdict.status is None and verdict.action is Action.RETRY


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost`` or a loopback address)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class GoogleApiClient:
    """The base of a connector over one Google API: its service, and one run's quota and retries.

    The service and its ``Http`` are built on the first call, so constructing a
    connector makes no request. The quota meter and the retry budget count one
    run: a connector calls :meth:`_start_run` when a run starts. ``sleep``,
    ``clock`` and ``rand`` are injectable so tests run fast and
    deterministically. Not thread-safe, as the ``Http`` is not.
    """

    def __init__(
        self,
        name: str,
        credentials: google.auth.credentials.Credentials,
        *,
        api: str,
        version: str,
        api_endpoint: str,
        units: Mapping[str, int],
        quota_rate: float | None,
        retry_policy: RetryPolicy | None,
        sleep: Callable[[float], None],
        clock: Callable[[], float],
        rand: Callable[[], float],
        timeout: float,
    ) -> None:
        self.name = name
        self.api_endpoint = api_endpoint
        self._credentials = credentials
        self._api = api
        self._version = version
        self._retry_policy = retry_policy or RetryPolicy()
        self._sleep = sleep
        self._rand = rand
        self._timeout = timeout
        self._quota = QuotaMeter(units, quota_rate, clock=clock, sleep=sleep)
        self._retrier = self._new_retrier()
        self._http: httplib2.Http | None = None
        self._service: Any = None

    @property
    def credentials(self) -> google.auth.credentials.Credentials:
        """The credentials, refreshed in place during a run: store them back afterwards
        so the next process starts with a live access token."""
        return self._credentials

    def units_spent(self) -> dict[str, int]:
        """Quota units per API method spent by the last (or current) run (Calendar
        meters requests: one unit each); :class:`connectors.capabilities.Metered`."""
        return self._quota.units_spent()

    @property
    def retries(self) -> int:
        """Backoffs taken by the last (or current) run."""
        return self._retrier.retries

    def _start_run(self) -> None:
        """A new run: count its quota from zero and give it a fresh retry budget."""
        self._quota.reset()
        self._retrier = self._new_retrier()

    def _execute(
        self,
        method: str,
        request: Any,
        *,
        missing: type[ConnectorError] = ConnectorError,
    ) -> dict[str, Any]:
        """One API call under the run's quota and retry budget."""

        def attempt() -> dict[str, Any]:
            self._quota.spend(method)
            try:
                result: dict[str, Any] = request.execute()
            except Exception as exc:
                if unanswered(exc):
                    self._quota.refund(method)
                raise
            return result

        return self._retrier.call(attempt, missing=missing)

    def _ensure_token(self) -> None:
        """Refresh through our own ``Http`` before a batch: the client library would
        refresh through a new, default one (environment proxies, no timeout)."""
        if self._credentials.valid:
            return
        self._service_object()
        assert self._http is not None
        request = google_auth_httplib2.Request(self._http)
        self._retrier.call(lambda: self._credentials.refresh(request))  # type: ignore[no-untyped-call]

    def _service_object(self) -> Any:
        """The service, built once (:func:`build_service`)."""
        if self._service is None:
            self._service, self._http = build_service(
                self._api,
                self._version,
                self.api_endpoint,
                self._credentials,
                timeout=self._timeout,
            )
        return self._service

    def _auth_hint(self) -> str:
        return reauth_hint(self.name, self._credentials)

    def _new_retrier(self) -> Retrier:
        return Retrier(
            self._retry_policy,
            classify=classify_exception,
            sleep=self._sleep,
            rand=self._rand,
            auth_hint=self._auth_hint(),
        )
