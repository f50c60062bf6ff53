"""`crm-sync import mbox` of a Maildir tree, as an admin runs it: every folder, the sent
ones as the owner's mail, junk, trash and drafts left out and reported, ``--folder``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from agent.cli.sync import import_connector_name
from storage.db import make_engine, session_factory, transaction
from storage.models import Interaction
from storage.sync_state import get_state
from tests.support.cli import run_cli
from tests.support.dovecot import DovecotServer, ImapUser
from tests.support.mailbuilder import message, write_maildir, write_maildir_folder, write_mbox

ME = "alice@northwind.example"


def mail(subject: str, sender: str, to: str) -> bytes:
    return message(sender=sender, to=[to], subject=subject, message_id=f"<{subject}@test>")


def configure(directory: Path, *, connectors: str = "") -> Path:
    """A config file (the owner's domain internal, contacts from sent mail only) and its
    SQLite database, both in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "crm-sync.toml").write_text(
        '[database]\nurl = "sqlite:///crm.db"\n'
        '[agent]\ninternal_domains = ["northwind.example", "example.com"]\n'
        'auto_create_contacts = "sent"\n' + connectors
    )
    created = run_cli("db", "upgrade", cwd=directory)
    assert created.returncode == 0, created.stderr
    return directory


def contacts(directory: Path) -> set[str]:
    listed = run_cli("contacts", "list", "--json", cwd=directory)
    assert listed.returncode == 0, listed.stderr
    return {email for contact in json.loads(listed.stdout) for email in contact["emails"]}


def interactions(directory: Path) -> int:
    engine = make_engine(f"sqlite:///{directory / 'crm.db'}")
    with engine.connect() as connection:
        count = int(connection.execute(select(func.count()).select_from(Interaction)).scalar_one())
    engine.dispose()
    return count


def summary(stdout: str) -> list[str]:
    """The folder lines of an import's summary, spaces collapsed."""
    lines = stdout.split("folders read", 1)[1].splitlines()[1:]
    return [" ".join(line.split()) for line in lines if line.strip()]


# --------------------------------------------------------------------------- a Dovecot tree


def test_a_maildir_dovecot_wrote_makes_contacts_of_those_the_owner_wrote_to(
    dovecot: DovecotServer, imap_user: ImapUser, tmp_path: Path
) -> None:
    owner = imap_user.address
    deliveries = {
        "INBOX": [
            mail("question", "Ann Lee <ann@acme.example>", owner),
            message(sender="news@shop.example", to=[owner], headers={"Precedence": "bulk"}),
        ],
        "Sent": [
            mail("reply", owner, "Ann Lee <ann@acme.example>"),
            mail("proposal", owner, "Carl Diaz <carl@globex.example>"),
        ],
        "Gesendete Elemente": [mail("angebot", owner, "Dora Berg <dora@initech.example>")],
        "Archive/2023": [mail("old thread", "Eve Ng <eve@umbrella.example>", owner)],
        "Junk": [mail("you won", "win@lottery.example", owner)],
        "Drafts": [mail("unsent", owner, "Frank Li <frank@hooli.example>")],
    }
    for folder, messages in deliveries.items():
        dovecot.append(imap_user, folder, messages)
    tree = dovecot.maildir(imap_user)
    args = ("import", "mbox", str(tree), "--mailbox", owner)

    inbox_only = configure(tmp_path / "inbox-only")
    assert run_cli(*args, "--folder", "INBOX", cwd=inbox_only).returncode == 0
    assert contacts(inbox_only) == set()

    everything = configure(tmp_path / "all")
    first = run_cli(*args, cwd=everything)
    assert first.returncode == 0, first.stderr
    assert contacts(everything) == {
        "ann@acme.example",
        "carl@globex.example",
        "dora@initech.example",
    }
    assert "read 6, logged 5 (5 new), skipped 1" in first.stdout
    assert "automated_bulk" in first.stdout
    assert summary(first.stdout) == [
        "INBOX 2 of 2 messages",
        "Archive/2023 1 of 1 message",
        "Gesendete Elemente 1 of 1 message (sent mail)",
        "Sent 2 of 2 messages (sent mail)",
        "folders skipped (--folder NAME reads one):",
        "Drafts 1 message: drafts, never sent",
        "Junk 1 message: junk mail",
    ]

    before = interactions(everything)
    second = run_cli(*args, cwd=everything)
    assert second.returncode == 0, second.stderr
    assert "read 0, logged 0" in second.stdout
    assert "Sent 0 of 2 messages (sent mail)" in summary(second.stdout)
    assert interactions(everything) == before == 5


# --------------------------------------------------------------------------- files written here


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = write_maildir(tmp_path / "Maildir", [mail("question", "ann@acme.example", ME)])
    write_maildir_folder(root, "Sent", [mail("reply", ME, "ann@acme.example")])
    write_maildir_folder(root, "Éléments envoyés", [mail("offre", ME, "eli@paris.example")])
    write_maildir_folder(root, "Junk", [mail("you won", "win@lottery.example", ME)])
    return root


def test_an_upgrade_from_an_inbox_only_cursor_adds_nothing_twice(
    tree: Path, tmp_path: Path
) -> None:
    """The cursor an INBOX-only version stored (``{"v": 1, "last": <file name>}``) still
    works: INBOX resumes where it was, the other folders are read from their start."""
    directory = configure(tmp_path / "crm")
    args = ("import", "mbox", str(tree), "--mailbox", ME)
    assert run_cli(*args, "--folder", "INBOX", cwd=directory).returncode == 0
    assert interactions(directory) == 1
    (inbox_file,) = (tree / "cur").iterdir()
    engine = make_engine(f"sqlite:///{directory / 'crm.db'}")
    with transaction(session_factory(engine)) as session:
        get_state(session, import_connector_name(tree, ME)).cursor = {
            "v": 1,
            "last": inbox_file.name,
        }
    engine.dispose()

    upgraded = run_cli(*args, cwd=directory)

    assert upgraded.returncode == 0, upgraded.stderr
    assert "read 2, logged 2 (2 new)" in upgraded.stdout
    assert "full resync" not in upgraded.stdout + upgraded.stderr
    assert "INBOX 0 of 1 message" in summary(upgraded.stdout)
    assert interactions(directory) == 3
    assert contacts(directory) == {"ann@acme.example", "eli@paris.example"}


@pytest.mark.parametrize(
    ("folders", "read", "skipped"),
    [
        (["Sent"], ["Sent 1 of 1 message (sent mail)"], ["INBOX", "Junk", "Éléments envoyés"]),
        (
            ["junk", "inbox"],
            ["INBOX 1 of 1 message", "Junk 1 of 1 message"],
            ["Sent", "Éléments envoyés"],
        ),
    ],
    ids=["sent-only", "junk-chosen"],
)
def test_folder_chooses_what_is_read(
    tree: Path, tmp_path: Path, folders: list[str], read: list[str], skipped: list[str]
) -> None:
    options = [arg for name in folders for arg in ("--folder", name)]
    result = run_cli(
        "import", "mbox", str(tree), "--mailbox", ME, *options, cwd=configure(tmp_path / "crm")
    )
    assert result.returncode == 0, result.stderr
    assert summary(result.stdout) == [
        *read,
        "folders skipped:",
        *(f"{name} 1 message: not chosen with --folder" for name in skipped),
    ]


@pytest.mark.parametrize(
    ("target", "folder", "error"),
    [
        ("Maildir", "Sant", "no folder named Sant in"),
        ("mail.mbox", "Sent", "chooses Maildir folders"),
    ],
    ids=["a-typo", "an-mbox-file"],
)
def test_a_folder_that_cannot_be_read_is_a_usage_error(
    tree: Path, tmp_path: Path, target: str, folder: str, error: str
) -> None:
    write_mbox(tmp_path / "mail.mbox", [mail("note", "ann@acme.example", ME)])
    result = run_cli(
        "import",
        "mbox",
        str(tmp_path / target),
        "--mailbox",
        ME,
        "--folder",
        folder,
        cwd=configure(tmp_path / "crm"),
    )
    assert result.returncode == 2
    assert error in result.stderr
    if target == "Maildir":
        assert "its folders: INBOX, Junk, Sent, Éléments envoyés" in result.stderr


def test_the_connector_config_chooses_folders_too(tree: Path, tmp_path: Path) -> None:
    directory = configure(
        tmp_path / "crm",
        connectors=(
            f'[[connectors]]\nname = "alice"\nkind = "mbox"\naccount = "{ME}"\n'
            f'path = "{tree}"\nfolders = ["Sent"]\n'
        ),
    )
    result = run_cli("sync", cwd=directory)
    assert result.returncode == 0, result.stderr
    assert "read 1, logged 1" in result.stdout
    assert contacts(directory) == {"ann@acme.example"}
