"""Every command against every fault an admin meets: a one-line message and the documented
exit status (0 done, 1 a failure at run time, 2 a usage or config error), never a
traceback. The faults are those of the config as a whole (none found, a database URL of
an unsupported kind, a negative interval, a database host not answering) and those of
one connector (a secret not set, a file not there, a mail host not answering)."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.cli import Ran, run_in_process, upgrade_database, write_config
from tests.support.commands import ARGUMENTS, COMMANDS
from tests.support.mailbuilder import message, write_mbox
from tests.support.tcp_proxy import running_proxy


def _closed_port() -> int:
    with running_proxy("127.0.0.1", 9) as gone:
        return gone.port


FAULTY = "bob"
"""The connector a connector's fault is set on; every command that takes a connector's
name is given it."""


@dataclass(frozen=True)
class Fault:
    name: str
    write: Callable[[Path], None]
    """Prepares the folder the command runs in."""
    connector: bool = False
    """Whether the fault is one connector's (the rest of the config is sound)."""


def _sound_mbox(folder: Path) -> str:
    mbox = write_mbox(
        folder / "carol.mbox",
        [message(sender="carol@example.com", to=["Ann Lee <ann@acme.example>"], subject="Hi")],
    )
    return (
        '[[connectors]]\nname = "carol"\nkind = "mbox"\naccount = "carol@example.com"\n'
        f'path = "{mbox}"\n'
    )


def _with_connector(faulty: str) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        write_config(folder, body=_sound_mbox(folder) + "\n" + faulty)

    return write


_IMAP = (
    f'[[connectors]]\nname = "{FAULTY}"\nkind = "imap"\naccount = "bob@example.com"\n'
    'host = "127.0.0.1"\nport = {port}\npassword = "{password}"\n'
)

FAULTS = [
    Fault("no config", lambda folder: None),
    Fault("unsupported URL", lambda folder: write_config(folder, "mysql://crm@db.example/crm")),
    Fault(
        "negative interval",
        lambda folder: write_config(folder, body="[agent]\ninterval = -60\n"),
    ),
    Fault(
        "database not answering",
        lambda folder: write_config(
            folder, f"postgresql://postgres@127.0.0.1:{_closed_port()}/crm_sync"
        ),
    ),
    Fault(
        "unset secret",
        _with_connector(_IMAP.format(port=9, password="${BOB_IMAP_PASSWORD}")),
        connector=True,
    ),
    Fault(
        "missing file",
        _with_connector(
            f'[[connectors]]\nname = "{FAULTY}"\nkind = "mbox"\naccount = "bob@example.com"\n'
            'path = "gone/bob.mbox"\n'
        ),
        connector=True,
    ),
    Fault(
        "mail host not answering",
        lambda folder: _with_connector(_IMAP.format(port=_closed_port(), password="secret"))(
            folder
        ),
        connector=True,
    ),
]

CONFIG_ERROR = {
    "no config": "run `crm-sync init` to write one",
    "unsupported URL": "database.url",
    "negative interval": "agent.interval: must be at least 10s (got -60",
}
"""What a config error's message must name, by fault: every command exits 2 with it."""

REPAIRS = {("connectors", "remove")}
"""Commands that edit a config without reading it as a whole: they must work on one that
does not validate, so the admin can take out what breaks it."""

CONNECTOR_FAILURES = {("sync",), ("run",), ("connectors", "test")}
"""Commands that use the faulty connector, which must fail (exit 1) naming it; the rest
go on as if it were sound."""

PYTHON_NAME = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Exception)\b")
"""An exception's class name (``FileNotFoundError``): Python's word, not the admin's."""


def _headings(text: str) -> list[str]:
    """The lines that start a message (a message's details are indented beneath it)."""
    return [line for line in text.splitlines() if line and not line[0].isspace()]


def _arguments(words: tuple[str, ...]) -> list[str]:
    args = [FAULTY if arg == "alice-gmail" else arg for arg in ARGUMENTS.get(words, [])]
    if words == ("run",):
        args.append("--once")
    if words == ("serve",):
        args.append("--check")
    if words == ("sync",):
        args += ["--connector", FAULTY]
    return args


def _run(
    fault: Fault,
    words: tuple[str, ...],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Ran:
    folder.mkdir(parents=True, exist_ok=True)
    fault.write(folder)
    (folder / "mail.mbox").write_text("")
    (folder / "people.csv").write_text("email,display_name\nann@acme.example,Ann Lee\n")
    (folder / "key.json").write_text(
        json.dumps({"type": "service_account", "client_email": "sa@x.example", "private_key": "k"})
    )
    return run_in_process(
        *words,
        *_arguments(words),
        cwd=folder,
        monkeypatch=monkeypatch,
        capsys=capsys,
        env={"COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database made by ``db upgrade``, copied where a connector's fault is tried."""
    folder = tmp_path_factory.mktemp("upgraded")
    write_config(folder)
    upgrade_database(folder)
    return folder / "crm-sync.db"


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_every_command_meets_the_fault_with_a_line_and_its_exit_status(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    fault: Fault,
    database: Path,
) -> None:
    for words in COMMANDS:
        folder = tmp_path / "-".join(words)
        if fault.connector:
            folder.mkdir()
            shutil.copy(database, folder / "crm-sync.db")
        ran = _run(fault, words, folder, monkeypatch, capsys)
        said = ran.stdout + ran.stderr
        where = f"{' '.join(words)} with {fault.name}: exit {ran.code}\n{said}"
        assert "Traceback" not in said, where
        assert not PYTHON_NAME.search(said), where
        if fault.name in CONFIG_ERROR:
            assert ran.code == 2, where
            if words not in REPAIRS or fault.name == "no config":
                assert CONFIG_ERROR[fault.name] in ran.stderr, where
            assert len(_headings(ran.stderr)) == 1, where
        elif fault.name == "database not answering":
            assert ran.code in (0, 1, 2), where
            if ran.code == 1:
                assert ran.stderr.splitlines() == [
                    line for line in ran.stderr.splitlines() if "is PostgreSQL running?" in line
                ], where
        elif words in CONNECTOR_FAILURES:
            assert ran.code == 1, where
            assert f"{FAULTY}: " in ran.stderr, where
        else:
            assert ran.code in (0, 1, 2), where
