"""A Google API client object pointed at an endpoint: shared by the Gmail and Calendar connectors.

The service is built from the discovery document packaged with
google-api-python-client (no discovery request at run time) with its
``rootUrl`` moved to the endpoint. That moves every method *and* the batch
URI; ``client_options={"api_endpoint": ...}`` would replace ``servicePath``
as well and leave batch requests on Google's host.

Requests go through one ``httplib2.Http`` with a timeout. httplib2 reads
proxy settings from the environment but never bypasses them for a loopback
address, so a loopback endpoint (a test's fake server) is reached without
a proxy.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any
from urllib.parse import urlsplit

import google.auth.credentials
import google_auth_httplib2
import httplib2
from googleapiclient import discovery_cache
from googleapiclient.discovery import build_from_document


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


def is_loopback(url: str) -> bool:
    """Whether ``url`` names this machine (``localhost`` or a loopback address)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
