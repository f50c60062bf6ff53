"""The tenant's people, for ``crm-sync connectors add-team``: who has a mailbox to sync.

``GET /users`` ("List users") with the app's ``User.Read.All``, 999 a page
(the most Graph gives). Disabled accounts, guests and users without a mail
address have no mailbox of the team's to read, so they are left out here
rather than failing one by one later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from connectors.microsoft.graph import GraphClient

USER_FIELDS = ("id", "userPrincipalName", "mail", "displayName", "accountEnabled", "userType")


@dataclass(frozen=True)
class DirectoryUser:
    address: str
    """The primary SMTP address (``mail``), lower-case: the connector's account."""
    display_name: str


def mailbox_users(client: GraphClient) -> Iterator[DirectoryUser]:
    """Enabled members of the tenant that have a mail address, in the directory's order."""
    url: str | None = f"/users?$select={','.join(USER_FIELDS)}&$top=999"
    while url:
        page = client.get(url)
        for entry in page.get("value") or []:
            address = str(entry.get("mail") or "").strip().lower()
            if not address or entry.get("accountEnabled") is False:
                continue
            if str(entry.get("userType") or "Member") != "Member":
                continue
            yield DirectoryUser(address, str(entry.get("displayName") or ""))
        url = page.get("@odata.nextLink")
