"""Maildir trees through the mbox connector: every folder, both layouts, folder roles by
name, the per-folder cursor and byte-bounded batches, on real files (and on a tree the real
Dovecot wrote). The connector contract for a Maildir is in test_contract.py."""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import pytest

from connectors import maildir
from connectors.errors import CursorInvalid
from connectors.maildir import SENT_LABEL, role_of
from connectors.mbox import FolderCount, MboxConnector
from connectors.records import Batch, Cursor, MailMessage
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.mailbuilder import (
    Layout,
    maildir_folder,
    message,
    write_maildir,
    write_maildir_folder,
)

OWNER = "me@northwind.example"


def mail(subject: str, *, sender: str = "ann@acme.example", to: str = OWNER) -> bytes:
    return message(sender=sender, to=[to], subject=subject, message_id=f"<{subject}@test>")


def fetched(connector: MboxConnector, cursor: Cursor | None = None) -> list[MailMessage]:
    return [
        item
        for batch in connector.fetch(cursor)
        for item in batch.items
        if isinstance(item, MailMessage)
    ]


def subjects(items: Iterable[MailMessage]) -> set[str]:
    return {item.raw.split(b"Subject: ", 1)[1].split(b"\n", 1)[0].decode() for item in items}


def ids_in(prefix: str, directory: Path) -> set[str]:
    """The ids the scheme gives the files of ``directory``, worked out from their names."""
    return {f"maildir:{prefix}{path.name.split(':', 1)[0]}" for path in directory.iterdir()}


# --------------------------------------------------------------------------- every folder


@pytest.mark.parametrize(
    ("layout", "prefixes"),
    [
        ("maildir++", {"Sent": ".Sent/", "Archive/2023": ".Archive.2023/"}),
        ("nested", {"Sent": "Sent/", "Archive/2023": "Archive/2023/"}),
    ],
    ids=["maildir++", "nested"],
)
def test_every_folder_is_read_with_ids_by_folder(
    tmp_path: Path, layout: Layout, prefixes: dict[str, str]
) -> None:
    root = write_maildir(tmp_path / "Maildir", [mail("inbox-1"), mail("inbox-2")])
    write_maildir_folder(
        root, "Sent", [mail("sent-1", sender=OWNER, to="bo@b.example")], layout=layout
    )
    write_maildir_folder(root, "Archive/2023", [mail("archived")], layout=layout, sub="new")
    expected = ids_in("", root / "cur")
    for folder, prefix in prefixes.items():
        folder_path = maildir_folder(root, folder, layout)
        expected |= ids_in(prefix, folder_path / "cur") | ids_in(prefix, folder_path / "new")

    items = fetched(MboxConnector("m", root, OWNER))

    assert Counter(item.source_id for item in items) == Counter(expected)
    assert subjects(items) == {"inbox-1", "inbox-2", "sent-1", "archived"}


def test_a_tree_of_folders_without_an_inbox_at_its_root_is_read(tmp_path: Path) -> None:
    """mbsync's store: ``~/Mail/Inbox``, ``~/Mail/Sent`` side by side, no Maildir above."""
    write_maildir_folder(tmp_path, "Inbox", [mail("in")], layout="nested")
    write_maildir_folder(tmp_path, "Sent", [mail("out", sender=OWNER)], layout="nested")
    names = [folder.name for folder in maildir.folders(tmp_path)]
    assert names == ["Inbox", "Sent"]
    assert subjects(fetched(MboxConnector("m", tmp_path, OWNER))) == {"in", "out"}


def test_tmp_is_never_read(tmp_path: Path) -> None:
    root = write_maildir(tmp_path / "Maildir", [mail("delivered")])
    write_maildir(root, [mail("being delivered")], sub="tmp")
    write_maildir_folder(root, "Sent", [mail("half-written", sender=OWNER)], sub="tmp")
    assert subjects(fetched(MboxConnector("m", root, OWNER))) == {"delivered"}


def test_a_message_moved_or_expunged_since_the_listing_is_found_or_left_out(
    tmp_path: Path,
) -> None:
    """A client reads a message in new/ (to cur/, flags added) or expunges it mid-import."""
    root = write_maildir(tmp_path / "Maildir", [mail("moved"), mail("gone")], sub="new")
    inbox = maildir.folders(root)[0]
    (moved, moved_path), (gone, gone_path) = maildir.messages(inbox)
    moved_path.rename(root / "cur" / f"{moved_path.name}:2,S")
    gone_path.unlink()
    assert maildir.read(inbox, moved, moved_path) == mail("moved")
    assert maildir.read(inbox, gone, gone_path) is None


# --------------------------------------------------------------------------- folder roles

ROLE_NAMES = [
    ("Sent", "sent"),
    ("Sent Items", "sent"),
    ("Sent Messages", "sent"),
    ("sent-mail", "sent"),
    ("[Gmail]/Sent Mail", "sent"),
    ("INBOX.Sent", "sent"),
    ("Gesendet", "sent"),
    ("Gesendete Elemente", "sent"),
    ("Envoyés", "sent"),
    ("Éléments envoyés", "sent"),
    ("Envoye\u0301s", "sent"),
    ("Enviados", "sent"),
    ("Elementos enviados", "sent"),
    ("Inviati", "sent"),
    ("Posta inviata", "sent"),
    ("Verzonden", "sent"),
    ("Skickat", "sent"),
    ("Sendt", "sent"),
    ("Lähetetyt", "sent"),
    ("Wysłane", "sent"),
    ("Odeslaná", "sent"),
    ("Отправленные", "sent"),
    ("已发送", "sent"),
    ("送信済み", "sent"),
    ("Junk", "junk"),
    ("Junk E-mail", "junk"),
    ("Junk-E-Mail", "junk"),
    ("Spam", "junk"),
    ("Courrier indésirable", "junk"),
    ("Trash", "trash"),
    ("Deleted Items", "trash"),
    ("Papierkorb", "trash"),
    ("Корзина", "trash"),
    ("Drafts", "drafts"),
    ("Entwürfe", "drafts"),
    ("Brouillons", "drafts"),
    ("Archive", None),
    ("Sentinel", None),
    ("Clients/Acme", None),
]


@pytest.mark.parametrize(("name", "role"), ROLE_NAMES, ids=[name for name, _ in ROLE_NAMES])
def test_folder_roles_by_name(name: str, role: str | None) -> None:
    assert role_of(name) == role


SENT_NAMES = [
    "Sent",
    "Sent Items",
    "Gesendete Elemente",
    "Éléments envoyés",
    "Elementos enviados",
    "Posta inviata",
    "Verzonden",
    "Skickat",
    "Lähetetyt",
    "Wysłane",
    "Odeslaná",
    "Отправленные",
    "已发送",
    "送信済み",
]


@pytest.mark.parametrize("layout", ["maildir++", "nested"])
@pytest.mark.parametrize("name", SENT_NAMES, ids=SENT_NAMES)
def test_a_sent_folder_in_any_language_labels_its_mail_sent(
    tmp_path: Path, name: str, layout: Layout
) -> None:
    """On disk as Dovecot writes it (modified UTF-7 in Maildir++) or as a plain directory;
    the label is the one the IMAP connector gives mail of a ``\\Sent`` folder."""
    root = write_maildir(tmp_path / "Maildir", [mail("received")])
    write_maildir_folder(root, name, [mail("written", sender=OWNER)], layout=layout)
    labels = {
        subjects([item]).pop(): item.labels for item in fetched(MboxConnector("m", root, OWNER))
    }
    assert labels == {"received": frozenset(), "written": frozenset({SENT_LABEL})}


def test_each_name_of_the_table_is_listed_once() -> None:
    """Once, also as matched (so no name can have two roles)."""
    keys = Counter(
        maildir._name_key(name) for names in maildir.FOLDER_ROLES.values() for name in names
    )
    assert [key for key, count in keys.items() if count > 1] == []


# --------------------------------------------------------------------------- choosing folders


def tree(root: Path) -> Path:
    write_maildir(root, [mail("inbox")])
    for folder in ("Sent", "Archive", "Junk", "Trash", "Drafts"):
        write_maildir_folder(root, folder, [mail(folder.lower())])
    write_maildir_folder(root, "Spam", [mail("spam-1"), mail("spam-2")], layout="nested")
    return root


def test_junk_trash_and_drafts_are_skipped_and_say_why(tmp_path: Path) -> None:
    connector = MboxConnector("m", tree(tmp_path / "Maildir"), OWNER)
    assert subjects(fetched(connector)) == {"inbox", "sent", "archive"}
    assert connector.folder_counts() == [
        FolderCount("INBOX", None, 1, 1),
        FolderCount("Archive", None, 1, 1),
        FolderCount("Sent", "sent", 1, 1),
        FolderCount("Drafts", "drafts", 1, 0, "drafts, never sent"),
        FolderCount("Junk", "junk", 1, 0, "junk mail"),
        FolderCount("Spam", "junk", 2, 0, "junk mail"),
        FolderCount("Trash", "trash", 1, 0, "deleted mail"),
    ]


@pytest.mark.parametrize(
    ("wanted", "read", "missing"),
    [
        (["Sent"], {"sent"}, ()),
        (["sent", "JUNK"], {"sent", "junk"}, ()),
        (["INBOX", ".Archive"], {"inbox", "archive"}, ()),
        (["Spam", "Drafts"], {"spam-1", "spam-2", "drafts"}, ()),
        (["Sent", "Sant"], {"sent"}, ("Sant",)),
    ],
    ids=["one", "any-case-and-junk", "inbox-and-by-directory", "nested-and-drafts", "a-typo"],
)
def test_folders_chosen_by_name(
    tmp_path: Path, wanted: list[str], read: set[str], missing: tuple[str, ...]
) -> None:
    connector = MboxConnector("m", tree(tmp_path / "Maildir"), OWNER, folders=wanted)
    assert subjects(fetched(connector)) == read
    assert connector.selection().missing == missing
    not_chosen = [c.name for c in connector.folder_counts() if c.skipped == maildir.NOT_CHOSEN]
    assert len(not_chosen) == 7 - len(wanted) + len(missing)


def test_a_sent_folder_given_on_its_own_is_still_sent(tmp_path: Path) -> None:
    """``import mbox ~/Maildir/.Sent``: the root is that folder; its ids are a root's."""
    sent = write_maildir_folder(tree(tmp_path / "Maildir"), "Sent", [])
    (item,) = fetched(MboxConnector("m", sent, OWNER))
    assert item.labels == {SENT_LABEL} and item.source_id.count("/") == 0


# --------------------------------------------------------------------------- cursor


def test_each_folder_resumes_where_it_stopped_and_a_second_fetch_reads_nothing(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path / "Maildir")
    connector = MboxConnector("m", root, OWNER, batch_size=2)
    final = list(connector.fetch(None))[-1].cursor
    assert set(final["folders"]) == {".", ".Archive", ".Sent"}
    assert fetched(connector, final) == []

    sent = root / ".Sent" / "new"
    (sent / "1800000000.M1P1.host").write_bytes(mail("later", sender=OWNER))
    (root / "new" / "1800000001.M1P1.host").write_bytes(mail("later-in"))
    later = fetched(connector, final)
    assert [(subjects([i]).pop(), i.source_id) for i in later] == [
        ("later-in", "maildir:1800000001.M1P1.host"),
        ("later", "maildir:.Sent/1800000000.M1P1.host"),
    ]


def test_an_inbox_only_cursor_resumes_inbox_and_reads_every_other_folder(tmp_path: Path) -> None:
    """The cursor an INBOX-only version wrote (``{"v": 1, "last": <file name>}``) still
    works: INBOX's ids have not changed, so nothing of it is read twice."""
    root = tree(tmp_path / "Maildir")
    (inbox_file,) = (root / "cur").iterdir()
    old = {"v": 1, "last": inbox_file.name}
    connector = MboxConnector("m", root, OWNER)
    batches = list(connector.fetch(old))
    assert subjects(i for b in batches for i in b.items if isinstance(i, MailMessage)) == {
        "sent",
        "archive",
    }
    assert batches[-1].cursor["v"] == maildir.CURSOR_VERSION
    assert batches[-1].cursor["folders"]["."] == inbox_file.name.split(":", 1)[0]
    assert fetched(connector, {"v": 1, "last": None}) != []


@pytest.mark.parametrize(
    "cursor",
    [
        {"v": 1, "offset": 120},
        {"v": 2, "folders": {".": 17}},
        {"v": 2, "folders": [".", "x"]},
        {"v": 3, "folders": {}},
    ],
    ids=["an-mbox-cursor", "a-position-not-a-name", "folders-not-a-table", "a-later-version"],
)
def test_a_cursor_it_cannot_read_is_cursor_invalid(tmp_path: Path, cursor: Cursor) -> None:
    connector = MboxConnector("m", tree(tmp_path / "Maildir"), OWNER)
    with pytest.raises(CursorInvalid):
        list(connector.fetch(cursor))


# --------------------------------------------------------------------------- batches


def batch_sizes(batches: Iterable[Batch]) -> list[list[int]]:
    return [[len(item.raw) for item in b.items if isinstance(item, MailMessage)] for b in batches]


def test_a_batch_closes_before_a_message_that_would_pass_the_byte_bound_and_resumes(
    tmp_path: Path,
) -> None:
    """:mod:`connectors.batching`'s rule, across folders; each cursor resumes exactly."""
    small = mail("small")
    large = message(sender="ann@acme.example", to=[OWNER], body="attachment " * 1000)
    root = write_maildir(tmp_path / "Maildir", [small, small, large])
    write_maildir_folder(root, "Sent", [small, small, small])
    connector = MboxConnector("m", root, OWNER, batch_bytes=2 * len(small) + 10)
    batches = list(connector.fetch(None))
    assert batch_sizes(batches) == [
        [len(small), len(small)],
        [len(large)],
        [len(small), len(small)],
        [len(small)],
    ]
    every = [item.source_id for batch in batches for item in batch.items]
    for index, batch in enumerate(batches):
        before = [item.source_id for b in batches[: index + 1] for item in b.items]
        assert before + [item.source_id for item in fetched(connector, batch.cursor)] == every


def test_a_batch_closes_at_whichever_bound_comes_first(tmp_path: Path) -> None:
    root = write_maildir(tmp_path / "Maildir", [mail(f"m{n}") for n in range(5)])
    size = len(mail("m0"))
    by_count = MboxConnector("m", root, OWNER, batch_size=2, batch_bytes=10**9)
    by_bytes = MboxConnector("m", root, OWNER, batch_size=100, batch_bytes=size)
    assert [len(b) for b in batch_sizes(by_count.fetch(None))] == [2, 2, 1]
    assert [len(b) for b in batch_sizes(by_bytes.fetch(None))] == [1, 1, 1, 1, 1]


# --------------------------------------------------------------------------- Dovecot


DOVECOT_FOLDERS = {
    "INBOX": [mail("question"), mail("newsletter", sender="news@shop.example")],
    "Sent": [mail("reply", sender=OWNER, to="ann@acme.example")],
    "Gesendete Elemente": [mail("angebot", sender=OWNER, to="dora@initech.example")],
    "Éléments envoyés": [mail("offre", sender=OWNER, to="eli@paris.example")],
    "Archive/2023": [mail("old thread", sender="eve@umbrella.example")],
    "Junk": [mail("you won", sender="win@lottery.example")],
    "Drafts": [mail("unsent", sender=OWNER, to="frank@hooli.example")],
}


@pytest.fixture
def dovecot_tree(dovecot: DovecotServer, imap_user: ImapUser) -> Path:
    """The Maildir++ tree Dovecot writes when mail is delivered (APPENDed) to folders."""
    for folder, messages in DOVECOT_FOLDERS.items():
        dovecot.append(imap_user, folder, messages)
    return dovecot.maildir(imap_user)


def test_a_tree_dovecot_wrote_is_read_folder_by_folder(dovecot_tree: Path) -> None:
    expected = ids_in("", dovecot_tree / "new")
    for folder in ("Sent", "Gesendete Elemente", "Éléments envoyés", "Archive/2023"):
        path = maildir_folder(dovecot_tree, folder, "maildir++")
        expected |= ids_in(f"{path.name}/", path / "new")
    connector = MboxConnector("dovecot", dovecot_tree, OWNER)

    items = fetched(connector)

    assert Counter(i.source_id for i in items) == Counter(expected)
    sent = {subjects([i]).pop() for i in items if SENT_LABEL in i.labels}
    assert sent == {"reply", "angebot", "offre"}
    assert subjects(items) == sent | {"question", "newsletter", "old thread"}
    counts = {c.name: (c.role, c.messages, c.read, c.skipped) for c in connector.folder_counts()}
    assert {name: counts.pop(name) for name in DOVECOT_FOLDERS} == {
        "INBOX": (None, 2, 2, None),
        "Sent": ("sent", 1, 1, None),
        "Gesendete Elemente": ("sent", 1, 1, None),
        "Éléments envoyés": ("sent", 1, 1, None),
        "Archive/2023": (None, 1, 1, None),
        "Junk": ("junk", 1, 0, "junk mail"),
        "Drafts": ("drafts", 1, 0, "drafts, never sent"),
    }
    assert all(messages == 0 for _role, messages, _read, _skipped in counts.values()), counts


def test_a_copy_of_the_tree_keeps_its_ids(dovecot_tree: Path, tmp_path: Path) -> None:
    """Ids depend on the tree, not on where it lies: a backup restored elsewhere matches."""
    copy = shutil.copytree(dovecot_tree, tmp_path / "Maildir")
    ids = {i.source_id for i in fetched(MboxConnector("a", dovecot_tree, OWNER))}
    assert {i.source_id for i in fetched(MboxConnector("b", copy, OWNER))} == ids
