"""A fake Google API server that speaks Google's HTTP wire protocol on a loopback port.

The real google-api-python-client, google-auth and google-auth-oauthlib talk to
it unmodified: point a discovery document's ``rootUrl`` and a credential's
``token_uri`` at :attr:`FakeGoogle.url <server.FakeGoogle.url>`. The client
builds its services from the discovery documents it ships with
(``connectors.google.service``), so the fake serves none. It implements, one
module per job:

``server``
    :class:`FakeGoogle`: HTTP on a loopback port, the route table, the batch
    endpoint (``/batch``, ``/batch/gmail/v1``, ``/batch/calendar/v3``), the
    request log with quota units per API method, and fault injection
    (:class:`FaultPlan`: a seeded rate of 429/500/503 answers on API calls and
    batch parts, forced answers for the next calls, dropped connections).
``oauth``
    the token endpoint (refresh-token, JWT-bearer and authorization-code with
    PKCE grants), the consent screen (who signs in: ``sign_in_next``, the
    request's ``login_hint``, ``consent_account``), revoked and expired tokens,
    and service-account key files for tests.
``oidc``
    an OpenID Connect issuer at the fake's root URL: the discovery document,
    the signing keys as a JWK Set and as PEM certificates, ID tokens in the
    code grant (``openid`` scope, with the request's ``nonce``), UserInfo, and
    :meth:`FakeGoogle.id_token <oidc.OidcServer.id_token>` to mint tokens
    (``key="other"`` for forged ones).
``gmail``, ``mailbox``
    Gmail v1's read methods with the metadata scope's restrictions, over
    mailboxes whose every change is a history record (expired on request); a
    Gmail add-on's per-message tokens (``issue_message_token``) open the one
    message they were given for.
``calendar``
    Calendar v3's ``calendarList.list`` and ``events.list`` with
    ``singleEvents=false``, paging and sync tokens (expired on request).
``api``
    what every API shares: a call as a handler sees it, Google's error shape.

Errors use Google's JSON shape. The fake's behaviour is pinned by
``tests/support/test_fake_google.py``, ``test_fake_google_calendar.py`` and
``test_fake_google_oidc.py``.
"""
