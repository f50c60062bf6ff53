"""Graph methods under ``/v1.0``: users, mail folders, messages, calendar views.

Every path takes ``/users/{id | userPrincipalName}/...`` and, with a delegated
token, ``/me/...`` (an app-only token on ``/me`` gets 400, as Graph answers).
A delegated token reaches only its own user's mailbox and calendar.

Permissions (from each method's "Permissions" table):

- mail: Mail.ReadBasic, Mail.ReadBasic.All, Mail.Read, Mail.ReadWrite. With
  only a *ReadBasic* permission, messages come without ``body``,
  ``bodyPreview`` and ``uniqueBody`` (the permission's description:
  "except for body, bodyPreview, uniqueBody, attachments, extensions, and any
  extended properties"); with ``FakeGraph.read_basic_body = "deny"`` selecting
  them answers 403 ``ErrorAccessDenied`` instead. ``$value`` answers 403
  ``ErrorAccessDenied``.
- users: User.Read (``/me`` only), User.ReadBasic.All, User.Read.All,
  Directory.Read.All; otherwise 403 ``Authorization_RequestDenied``.
- calendars: Calendars.ReadBasic(.All) (no ``body``/``bodyPreview``),
  Calendars.Read, Calendars.ReadWrite.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tests.support.fake_google.api import Answer
from tests.support.fake_graph.calendar import Instance, window
from tests.support.fake_graph.common import (
    GraphError,
    GraphRequest,
    access_denied,
    bad_request,
    check_select,
    item_not_found,
    page_size,
    project,
    selected,
)
from tests.support.fake_graph.delta import link, run_round
from tests.support.fake_graph.mail import (
    BASIC_EXCLUDED,
    MESSAGE_PROPERTIES,
    SELECT_ONLY,
    Folder,
    Message,
    check_filter,
)

if TYPE_CHECKING:
    from tests.support.fake_graph.server import FakeGraph, User

Route = tuple[str, str, str, Callable[[GraphRequest], "Mapping[str, Any] | Answer"]]

U = r"(?:users/(?P<user>[^/]+)|(?P<me>me))"
F = r"mailFolders(?:/(?P<folder>[^/()']+)|\('(?P<folderq>[^']+)'\))"
DELTA = r"(?:delta|microsoft\.graph\.delta)(?:\(\))?"

MAIL_FULL = frozenset({"Mail.Read", "Mail.ReadWrite", "Mail.Read.Shared", "Mail.ReadWrite.Shared"})
MAIL_BASIC = frozenset({"Mail.ReadBasic", "Mail.ReadBasic.All", "Mail.ReadBasic.Shared"})
USERS_READ = frozenset(
    {
        "User.ReadBasic.All",
        "User.Read.All",
        "User.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
CAL_FULL = frozenset({"Calendars.Read", "Calendars.ReadWrite", "Calendars.Read.Shared"})
CAL_BASIC = frozenset({"Calendars.ReadBasic", "Calendars.ReadBasic.All"})
USER_PROPERTIES = (
    "id",
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "accountEnabled",
    "department",
    "companyName",
    "proxyAddresses",
    "userType",
    "otherMails",
    "createdDateTime",
    "usageLocation",
)


def graph_routes(fake: FakeGraph) -> list[Route]:
    api = _Api(fake)
    return [
        ("GET", r"users", "users.list", api.users_list),
        ("GET", rf"{U}", "users.get", api.user_get),
        ("GET", rf"{U}/mailFolders", "mailFolders.list", api.folders_list),
        ("GET", rf"{U}/{F}", "mailFolders.get", api.folder_get),
        ("GET", rf"{U}/{F}/childFolders", "mailFolders.childFolders", api.child_folders),
        ("GET", rf"{U}/{F}/messages", "messages.list", api.messages_list),
        ("GET", rf"{U}/messages", "messages.list", api.messages_list),
        ("GET", rf"{U}/{F}/messages/{DELTA}", "messages.delta", api.messages_delta),
        ("GET", rf"{U}/(?:{F}/)?messages/(?P<message>[^/]+)", "messages.get", api.message_get),
        (
            "GET",
            rf"{U}/(?:{F}/)?messages/(?P<message>[^/]+)/\$value",
            "messages.value",
            api.message_value,
        ),
        ("GET", rf"{U}/(?:calendar/)?calendarView", "events.calendarView", api.calendar_view),
        ("GET", rf"{U}/(?:calendar/)?calendarView/{DELTA}", "events.delta", api.events_delta),
        ("GET", rf"{U}/(?:calendar/)?events/(?P<event>[^/]+)", "events.get", api.event_get),
    ]


class _Api:
    def __init__(self, fake: FakeGraph) -> None:
        self.fake = fake
        self.list_tokens: dict[str, int] = {}

    # -- who

    def owner(self, request: GraphRequest) -> User:
        grant = request.grant
        if request.via_me:
            if grant.user_id is None:
                raise bad_request("/me request is only valid with delegated authentication flow.")
            return self.fake.users[grant.user_id]
        ref = request.args["user"]
        user = self.fake.user(ref)
        if user is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        if grant.user_id is not None and user.id != grant.user_id:
            raise access_denied()
        return user

    def mail_basic(self, request: GraphRequest) -> bool:
        """Whether the token has only a ReadBasic permission (403 with none)."""
        if request.grant.has_any(MAIL_FULL):
            return False
        if request.grant.has_any(MAIL_BASIC):
            return True
        raise access_denied()

    def calendar_basic(self, request: GraphRequest) -> bool:
        if request.grant.has_any(CAL_FULL):
            return False
        if request.grant.has_any(CAL_BASIC):
            return True
        raise access_denied()

    # -- users

    def _check_users_permission(self, request: GraphRequest, user: User | None) -> None:
        grant = request.grant
        if grant.has_any(USERS_READ):
            return
        if user is not None and grant.user_id == user.id and grant.has_any({"User.Read"}):
            return
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )

    def _user_json(self, user: User, request: GraphRequest) -> dict[str, Any]:
        full: dict[str, Any] = dict.fromkeys(USER_PROPERTIES)
        full.update(user.json())
        names = selected(request)
        if names is None:
            return user.json()
        check_select(names, USER_PROPERTIES, "user")
        return project(full, names, always=())

    def users_list(self, request: GraphRequest) -> Mapping[str, Any]:
        self._check_users_permission(request, None)
        token = request.param("skiptoken")
        if token:
            if token not in self.list_tokens:
                raise bad_request("Invalid skip token.", "Request_BadRequest")
            offset, size = divmod(self.list_tokens[token], 1000)
        else:
            offset = 0
            size = (
                page_size(request, self.fake.user_page_size)
                if request.param("top")
                else self.fake.user_page_size
            )
            if not 1 <= size <= 999:
                raise bad_request(
                    f"Invalid page size specified: '{size}'. Must be between 1 and 999 inclusive.",
                    "Request_BadRequest",
                )
        users = sorted(self.fake.users.values(), key=lambda u: u.upn.lower())
        chunk = users[offset : offset + size]
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/$metadata#users",
            "value": [self._user_json(u, request) for u in chunk],
        }
        if offset + size < len(users):
            next_token = secrets.token_urlsafe(18)
            self.list_tokens[next_token] = (offset + size) * 1000 + size
            query = {k: v for k, v in request.params.items() if k in ("select",)}
            body["@odata.nextLink"] = link(
                request.base_url, "users", {**query, "skiptoken": next_token}
            )
        return body

    def user_get(self, request: GraphRequest) -> Mapping[str, Any]:
        if request.via_me:
            if request.grant.user_id is None:
                raise bad_request("/me request is only valid with delegated authentication flow.")
            user: User | None = self.fake.users[request.grant.user_id]
        else:
            user = self.fake.user(request.args["user"])
        self._check_users_permission(request, user)
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{request.args.get('user')}' does not exist or one of its queried "
                "reference-property objects are not present.",
            )
        return {
            "@odata.context": f"{request.base_url}/$metadata#users/$entity",
            **self._user_json(user, request),
        }

    # -- folders

    def folder(self, request: GraphRequest, user: User) -> Folder:
        ref = request.args.get("folder") or request.args.get("folderq") or ""
        found = user.mailbox.find_folder(ref)
        if found is None:
            raise item_not_found()
        return found

    def _folder_page(
        self, request: GraphRequest, user: User, folders: list[Folder], path: str
    ) -> dict[str, Any]:
        size = page_size(request, 10)
        skip = int(request.param("skip") or 0)
        chunk = folders[skip : skip + size]
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/$metadata#users('{user.id}')/mailFolders",
            "value": [user.mailbox.folder_json(f) for f in chunk],
        }
        if skip + size < len(folders):
            body["@odata.nextLink"] = link(
                request.base_url, path, {"top": str(size), "skip": str(skip + size)}
            )
        return body

    def folders_list(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        self.mail_basic(request)
        root = user.mailbox.folder("msgfolderroot")
        path = f"{request.user_segment(user.id)}/mailFolders"
        return self._folder_page(request, user, user.mailbox.children(root.id), path)

    def folder_get(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        self.mail_basic(request)
        return user.mailbox.folder_json(self.folder(request, user))

    def child_folders(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        self.mail_basic(request)
        folder = self.folder(request, user)
        path = f"{request.user_segment(user.id)}/mailFolders/{folder.id}/childFolders"
        return self._folder_page(request, user, user.mailbox.children(folder.id), path)

    # -- messages

    def _message_json(
        self, request: GraphRequest, message: Message, names: list[str] | None, *, basic: bool
    ) -> dict[str, Any]:
        prefer = request.prefer
        immutable = prefer.get("idtype", "").lower() == "immutableid"
        body_type = prefer.get("outlook.body-content-type", "").lower() or None
        if immutable and 'IdType="ImmutableId"' not in request.applied:
            request.applied.append('IdType="ImmutableId"')
        if body_type in ("text", "html"):
            applied = f'outlook.body-content-type="{body_type}"'
            if applied not in request.applied:
                request.applied.append(applied)
        full = message.json(immutable=immutable, body_type=body_type, base_url=request.base_url)
        if basic:
            for name in BASIC_EXCLUDED:
                full.pop(name)
        if names is None:
            return {k: v for k, v in full.items() if k not in SELECT_ONLY}
        return project(full, names, always=("@odata.etag", "id"))

    def _check_message_select(self, names: list[str] | None, basic: bool) -> None:
        if names is None:
            return
        check_select(names, MESSAGE_PROPERTIES, "message")
        lower = {n.lower() for n in BASIC_EXCLUDED}
        if basic and self.fake.read_basic_body == "deny" and any(n.lower() in lower for n in names):
            raise access_denied()

    def messages_delta(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.mail_basic(request)
        folder = self.folder(request, user)
        mailbox = user.mailbox
        if not (request.param("skiptoken") or request.param("deltatoken")):
            if "search" in request.params:
                raise bad_request(
                    "$search is not supported in a delta query.", "ErrorInvalidUrlQuery"
                )
            self._check_message_select(selected(request), basic)
            check_filter(request.param("filter"))
            orderby = request.param("orderby")
            if orderby and orderby.replace("+", " ").strip().lower() != "receiveddatetime desc":
                raise bad_request(
                    f"The $orderby '{orderby}' is not supported in a delta query.",
                    "ErrorInvalidUrlQuery",
                )
            change_type = request.param("changetype")
            if change_type is not None and change_type not in ("created", "updated", "deleted"):
                raise bad_request(f"Invalid changeType '{change_type}'.", "ErrorInvalidParameter")
        prefer_size = request.prefer.get("odata.maxpagesize")
        if prefer_size is not None:
            request.applied.append(f"odata.maxpagesize={prefer_size}")

        def size(query: Mapping[str, str]) -> int:
            top = query.get("top")
            if prefer_size is None and top is not None:
                if not top.isdigit() or int(top) < 1:
                    raise bad_request(f"Invalid page size '{top}'.", "ErrorInvalidParameter")
                return int(top)
            return page_size(request, self.fake.message_page_size)

        def render(key: tuple[str, ...], query: Mapping[str, str]) -> dict[str, Any]:
            head = {"@odata.type": "#microsoft.graph.message"}
            if key[0] == "live":
                message = mailbox.messages.get(key[1])
                if message is not None and message.folder_id == folder.id:
                    names = None if query.get("select") is None else query["select"].split(",")
                    return {**head, **self._message_json(request, message, names, basic=basic)}
                return {**head, "id": key[1], "@removed": {"reason": "deleted"}}
            immutable = request.prefer.get("idtype", "").lower() == "immutableid"
            return {**head, "id": key[2] if immutable else key[1], "@removed": {"reason": key[3]}}

        return run_round(
            tokens=self.fake.delta_tokens,
            base_url=request.base_url,
            resource="messages",
            user_id=user.id,
            link_path=f"{request.user_segment(user.id)}/mailFolders('{folder.id}')/messages/delta",
            params=request.params,
            encoded=("select", "changetype", "filter", "orderby", "top", "expand"),
            page=size,
            current_seq=mailbox.seq,
            collect=lambda query, since: mailbox.delta_keys(folder.id, dict(query), since),
            render=render,
        )

    def _find_message(self, request: GraphRequest, user: User) -> Message:
        message = user.mailbox.message(request.args["message"])
        if message is None:
            raise item_not_found()
        in_folder = request.args.get("folder") or request.args.get("folderq")
        if in_folder and message.folder_id != self.folder(request, user).id:
            raise item_not_found()
        return message

    def message_get(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.mail_basic(request)
        names = selected(request)
        self._check_message_select(names, basic)
        message = self._find_message(request, user)
        context = f"{request.base_url}/$metadata#users('{user.id}')/messages/$entity"
        return {
            "@odata.context": context,
            **self._message_json(request, message, names, basic=basic),
        }

    def message_value(self, request: GraphRequest) -> Answer:
        user = self.owner(request)
        if self.mail_basic(request):
            raise access_denied()
        message = self._find_message(request, user)
        return Answer(200, {"Content-Type": self.fake.mime_content_type}, message.raw)

    def messages_list(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.mail_basic(request)
        names = selected(request)
        self._check_message_select(names, basic)
        if request.args.get("folder") or request.args.get("folderq"):
            folder = self.folder(request, user)
            messages = user.mailbox.in_folder(folder.id)
            path = f"{request.user_segment(user.id)}/mailFolders/{folder.id}/messages"
        else:
            messages = list(user.mailbox)
            path = f"{request.user_segment(user.id)}/messages"
        messages.sort(key=lambda m: m.received, reverse=True)
        size = page_size(request, self.fake.message_page_size)
        skip = int(request.param("skip") or 0)
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/$metadata#users('{user.id}')/messages",
            "value": [
                self._message_json(request, m, names, basic=basic)
                for m in messages[skip : skip + size]
            ],
        }
        if skip + size < len(messages):
            query = {k: v for k, v in request.params.items() if k == "select"}
            body["@odata.nextLink"] = link(
                request.base_url, path, {**query, "top": str(size), "skip": str(skip + size)}
            )
        return body

    # -- calendar

    def events_delta(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.calendar_basic(request)
        calendar = user.calendar
        if not (request.param("skiptoken") or request.param("deltatoken")):
            for option in ("select", "expand", "filter", "orderby", "search"):
                if option in request.params:
                    raise bad_request(
                        f"${option} is not supported on a calendarView delta query.",
                        "ErrorInvalidUrlQuery",
                    )
            window(request.param("startdatetime"), request.param("enddatetime"))
        prefer_size = request.prefer.get("odata.maxpagesize")
        if prefer_size is not None:
            request.applied.append(f"odata.maxpagesize={prefer_size}")

        def collect(query: Mapping[str, str], since: int | None) -> list[tuple[str, ...]]:
            start, end = window(query.get("startdatetime"), query.get("enddatetime"))
            return calendar.delta_keys(start, end, since)

        def render(key: tuple[str, ...], query: Mapping[str, str]) -> dict[str, Any]:
            if key[0] == "live":
                inst = calendar.instances().get(key[1])
                if inst is not None:
                    return calendar.instance_json(inst, basic=basic)
            return {
                "@odata.type": "#microsoft.graph.event",
                "id": key[1],
                "@removed": {"reason": "deleted"},
            }

        return run_round(
            tokens=self.fake.delta_tokens,
            base_url=request.base_url,
            resource="events",
            user_id=user.id,
            link_path=f"{request.user_segment(user.id)}/calendarView/delta",
            params=request.params,
            encoded=("startdatetime", "enddatetime"),
            page=lambda query: page_size(request, self.fake.event_page_size),
            current_seq=calendar.seq,
            collect=collect,
            render=render,
        )

    def calendar_view(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.calendar_basic(request)
        start, end = window(request.param("startdatetime"), request.param("enddatetime"))
        names = selected(request)
        found = user.calendar.view(start, end)
        size = page_size(request, self.fake.event_page_size)
        skip = int(request.param("skip") or 0)
        values = []
        for inst in found[skip : skip + size]:
            full = user.calendar.instance_json(inst, basic=basic)
            full.pop("@odata.type")
            values.append(
                full if names is None else project(full, names, always=("@odata.etag", "id"))
            )
        body: dict[str, Any] = {
            "@odata.context": f"{request.base_url}/$metadata#users('{user.id}')/calendarView",
            "value": values,
        }
        if skip + size < len(found):
            query = {
                k: v
                for k, v in request.params.items()
                if k in ("startdatetime", "enddatetime", "select")
            }
            body["@odata.nextLink"] = link(
                request.base_url,
                f"{request.user_segment(user.id)}/calendarView",
                {**query, "top": str(size), "skip": str(skip + size)},
            )
        return body

    def event_get(self, request: GraphRequest) -> Mapping[str, Any]:
        user = self.owner(request)
        basic = self.calendar_basic(request)
        calendar = user.calendar
        ref = request.args["event"]
        inst = calendar.instances().get(ref)
        if inst is None and ref in calendar.events:
            event = calendar.events[ref]
            kind = "seriesMaster" if event.recurrence else "singleInstance"
            inst = Instance(
                event.id,
                kind,
                event,
                None,
                event.start,
                event.end,
                event.subject,
                event.is_cancelled,
                event.attendees,
                event.seq,
            )
        if inst is None:
            raise item_not_found()
        full = calendar.instance_json(inst, basic=basic)
        full.pop("@odata.type")
        if inst.type == "seriesMaster" and inst.event.recurrence is not None:
            full["recurrence"] = inst.event.recurrence.json(inst.event.start)
            full["seriesMasterId"] = None
        names = selected(request)
        return full if names is None else project(full, names, always=("@odata.etag", "id"))
