"""A fake Microsoft Graph server that speaks Graph's HTTP wire protocol on a loopback port.

Written from Microsoft's documentation, before and apart from any connector.
One HTTPS listener (self-signed certificate, see :mod:`.tls`) plays both
``login.microsoftonline.com`` and ``graph.microsoft.com``::

    with FakeGraph() as fake:
        alice = fake.add_user("alice@contoso.com", "Alice")      # a Mailbox
        alice.deliver(raw_rfc5322_bytes)                          # into the Inbox
        fake.add_app(client_id, secret=..., app_permissions={"Mail.Read"})
        msal.ConfidentialClientApplication(
            client_id, client_credential=..., authority=fake.authority,
            instance_discovery=False, verify=fake.ca_file)
        httpx.Client(verify=fake.client_ssl_context()).get(f"{fake.graph_url}/users", ...)

MSAL Python refuses non-``https`` authorities, hence TLS. ``requests`` (MSAL's
HTTP client) lets ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE`` override
``verify=``, so unset them where MSAL talks to the fake. MSAL's instance
discovery goes to ``login.microsoftonline.com`` unless
``instance_discovery=False``; the fake also answers
``/common/discovery/instance`` for ``instance_discovery=f"{fake.url}/common/discovery/instance"``.

Modules: ``server`` (:class:`~.server.FakeGraph`: lifecycle, routing, JSON
batching, fault injection, call log), ``identity`` (token endpoint, device
code, discovery), ``routes`` (Graph methods and permissions), ``mail``
(mailboxes, folders, messages from raw bytes), ``calendar`` (events, series,
occurrences, exceptions), ``delta`` (state tokens and paging), ``common``
(error shape, ``$select``, ``Prefer``), ``tls``.

Documented behaviours covered, by the page they come from
----------------------------------------------------------

"message: delta" (/graph/api/message-delta) and "Get incremental changes to
messages in a folder" (/graph/delta-query-messages):
    ``GET /users/{id|upn}/mailFolders/{id}/messages/delta`` (and ``/me/...``;
    the links use the ``mailFolders('{id}')`` form of the docs' examples);
    ``$select`` (answers hold the selected properties plus ``id``,
    ``@odata.etag`` and ``@odata.type``); ``Prefer: odata.maxpagesize=N``
    (echoed in ``Preference-Applied``) and ``$top``; query options encoded in
    the tokens and not repeated; ``changeType=created|updated|deleted``;
    ``$filter=receivedDateTime ge|gt {value}`` only; ``$orderby=receivedDateTime desc``
    only; no ``$search``; updated messages come whole (or as selected), removed
    ones as ``{"id", "@removed": {"reason": "deleted"}}``.
"Use delta query to track changes in Microsoft Graph data" (/graph/delta-query-overview):
    rounds of ``@odata.nextLink`` (``$skiptoken``) pages ending with an
    ``@odata.deltaLink`` (``$deltatoken``), also when a page is empty; opaque
    tokens; the initial round returns what exists now (no tombstones);
    ``@removed`` reasons ``deleted``/``changed``; expired tokens answer a 40X
    error with ``syncStateNotFound`` (:meth:`~.server.FakeGraph.expire_delta_tokens`,
    410 by default, any status/code such as ``resyncRequired`` or
    ``SyncStateInvalid``); "synchronization reset": 410 with a ``Location``
    header holding the initial URL with an empty ``$deltatoken``.
"Microsoft Graph error responses and resource types" (/graph/errors):
    ``{"error": {"code", "message", "innerError": {"date", "request-id",
    "client-request-id"}}}``; ``request-id`` and ``client-request-id`` (echoed)
    response headers; codes ``syncStateNotFound``, ``resyncRequired``,
    ``activityLimitReached``, ``serviceNotAvailable``.
"Microsoft Graph throttling guidance" (/graph/throttling):
    429 with ``Retry-After``; 503 with ``Retry-After``; batch parts throttled
    one by one. :meth:`~.server.FakeGraph.fail_next` forces the next answers,
    :meth:`~.server.FakeGraph.throttle` sets a seeded rate.
"Combine multiple HTTP requests using JSON batching" (/graph/json-batching):
    ``POST /v1.0/$batch`` with ``requests`` (``id``, ``method``, relative
    ``url``, ``headers``, ``body``); at most 20 (more: 400); ids unique
    case-insensitively (else 400); ``dependsOn`` runs in order and a failed
    dependency gives 424; ``responses`` with ``id``, ``status``, ``headers``,
    ``body`` (non-JSON bodies such as ``$value`` base64-encoded).
"List mailFolders", "mailFolder resource type", "List childFolders":
    top-level folders under ``msgfolderroot`` with the well-known names
    ``inbox``, ``sentitems``, ``deleteditems``, ``drafts``, ``junkemail``,
    ``archive``, ``outbox`` usable in place of ids; counts; custom folders.
"message resource type", "Get message", "List messages":
    properties parsed from the raw bytes (``internetMessageId``, ``subject``,
    ``from``, ``sender``, ``toRecipients``, ``ccRecipients``,
    ``bccRecipients``, ``replyTo``, ``sentDateTime``, ``receivedDateTime``,
    ``body``, ``bodyPreview`` (255 characters of text), ``hasAttachments``,
    ``conversationId``, ``parentFolderId``, ``isRead``, ``isDraft``...);
    ``internetMessageHeaders`` and ``uniqueBody`` only when selected; HTML body
    by default, text with ``Prefer: outlook.body-content-type="text"``.
"Get MIME content of a message":
    ``GET .../messages/{id}/$value`` answers the stored bytes.
"Obtain immutable identifiers for Outlook resources":
    ids change when a message moves to another folder, unless the request has
    ``Prefer: IdType="ImmutableId"``.
"List users" (/graph/api/user-list):
    default properties, ``$select`` (only the selected properties),
    ``$top`` 1..999 (default 100) with ``@odata.nextLink`` ``$skiptoken``
    paging; ``GET /users/{id|upn}`` and ``/me``; an app-only token on
    ``/me`` gets 400.
"event: delta" (/graph/api/event-delta) and "Get incremental changes to events
in a calendar view" (/graph/delta-query-events):
    ``GET /users/{id}/calendarView/delta?startDateTime=&endDateTime=``
    (window required, encoded in the tokens; no ``$select``); single
    instances, occurrences and exceptions (never the series master) with
    ``seriesMasterId``, ``originalStart``, a per-occurrence ``iCalUId``,
    ``attendees[].status.response``, ``isCancelled``; later rounds give the
    changed instances and ``@removed`` (``deleted``) for deleted or cancelled
    occurrences and for changed instances outside the window.
"Microsoft identity platform and the OAuth 2.0 client credentials flow",
"... device authorization grant flow", "... refresh the access token":
    ``POST /{tenant}/oauth2/v2.0/token`` (``client_credentials`` with
    ``scope=https://graph.microsoft.com/.default``; device code with
    ``authorization_pending``, ``authorization_declined``,
    ``bad_verification_code``, ``expired_token``; ``refresh_token``, which
    answers ``invalid_grant`` once revoked); ``POST
    /{tenant}/oauth2/v2.0/devicecode`` (``device_code``, ``user_code``,
    ``verification_uri``, ``expires_in``, ``interval``, ``message``); errors
    with ``error``, ``error_description``, ``error_codes`` (AADSTS numbers),
    ``timestamp``, ``trace_id``, ``correlation_id``; the OpenID discovery
    document at ``/{tenant}/v2.0/.well-known/openid-configuration``.
Permissions reference (Mail.ReadBasic vs Mail.Read):
    Mail.ReadBasic(.All) reads "except for body, bodyPreview, uniqueBody,
    attachments, extensions, and any extended properties": the fake leaves
    those properties out, even when ``$select`` names them. No documented
    error exists for that case; ``FakeGraph.read_basic_body = "deny"`` answers
    403 ``ErrorAccessDenied`` instead, to test a client against both. ``$value``
    with only ReadBasic answers 403 ``ErrorAccessDenied``.

Not from the docs (observed or chosen; a connector should not depend on them)
------------------------------------------------------------------------------

- Error codes and messages Graph returns but the pages do not list:
  ``ErrorAccessDenied`` ("Access is denied. Check credentials and try
  again."), ``ErrorItemNotFound``, ``ErrorInvalidUser``,
  ``InvalidAuthenticationToken`` (401, also for revoked or expired tokens),
  ``RequestBroker--ParseUri`` for an unknown ``$select`` property, the message
  of the too-large-batch 400.
- An unknown (never issued) state token answers like an expired one (410
  ``syncStateNotFound``).
- Default page sizes: 10 for message and event delta and lists (Outlook's
  default ``$top``); the docs give no maximum, none is enforced.
- ``$value`` is served as ``text/plain`` (``FakeGraph.mime_content_type``).
- Revoking a user refuses its access tokens at once (as continuous access
  evaluation does); without CAE, Graph would accept them until they expire.
- ``conversationId`` groups by the first ``References``/``In-Reply-To``
  message id; Exchange uses its own thread index.
- Access and refresh tokens are opaque strings, ID tokens unsigned JWTs
  (``alg: none``); the JWK Set is empty.

Knowingly left out
------------------

Writes through HTTP (PATCH, move, send, delete: changes are test hooks
instead), attachments and ``$expand``, extended properties, change
notifications (webhooks), ``/mailFolders/delta``, ``/events/delta`` without
a window (beta), calendars other than the primary one, time zones other than
UTC (``Prefer: outlook.timezone`` is ignored), recurrence patterns other than
daily and weekly, shared and delegated mailboxes, application access
policies, ``$count``/``ConsistencyLevel``, ``$search``, national clouds, the
authorization-code flow, certificate credentials, ``/beta``.

The fake's behaviour is pinned by ``tests/support/test_fake_graph.py`` with
MSAL Python and httpx.
"""

from tests.support.fake_graph.calendar import Attendee, Calendar, Recurrence
from tests.support.fake_graph.mail import Mailbox, Message
from tests.support.fake_graph.server import Call, FakeGraph, FaultPlan, User

__all__ = [
    "Attendee",
    "Calendar",
    "Call",
    "FakeGraph",
    "FaultPlan",
    "Mailbox",
    "Message",
    "Recurrence",
    "User",
]
