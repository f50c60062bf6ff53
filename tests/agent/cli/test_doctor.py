"""`crm-sync doctor`: every finding from a config file an admin could write, and the command.

The findings come from :mod:`agent.runtime.checks`, one case per kind, read
from a real file and checked against a real SQLite database in-process
(each case is a config file away from a clean one). The command itself, its
exit codes and the line `status` prints, run through the real entry point.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from agent.runtime.checks import Finding, diagnose, load_leniently, looks_like_example
from config.private_files import create_private_file
from config.secrets import ensure_key_file
from storage.db import make_engine, upgrade
from tests.support.cli import run_cli

MBOX = 'name = "ann-mail"\nkind = "mbox"\naccount = "ann@acme.com"\npath = "ann.mbox"\n'


@dataclass(frozen=True)
class Case:
    """A config (``{database}``, ``{agent}``, ``{privacy}`` and ``{connector}`` filled from
    a clean one unless given) and the findings it must give: (check, level, where)."""

    expected: set[tuple[str, str, str]]
    agent: str = 'internal_domains = ["acme.com"]'
    privacy: str = ""
    connector: str | None = MBOX
    database: str = 'url = "sqlite:///crm.db"'
    prepare: Callable[[Path], object] = field(default=lambda folder: None)


def _old_schema(folder: Path) -> None:
    (folder / "crm.db").unlink()
    engine = make_engine(f"sqlite:///{folder / 'crm.db'}")
    upgrade(engine, "0003")
    engine.dispose()


def _key_and_client(folder: Path) -> None:
    ensure_key_file(folder / "crm-sync.key")
    (folder / "client.json").write_text(json.dumps({"installed": {}}))


def _json_file(name: str, content: object) -> Callable[[Path], None]:
    def write(folder: Path) -> None:
        (folder / name).write_text(json.dumps(content))

    return write


CASES = {
    "clean": Case(set()),
    "example-internal-domain": Case(
        {("example-value", "warning", "agent.internal_domains[1]")},
        agent='internal_domains = ["acme.com", "example.com"]',
    ),
    "dot-example-domain": Case(
        {("example-value", "warning", "agent.internal_domains[1]")},
        agent='internal_domains = ["acme.com", "northwind.example"]',
    ),
    "example-org-subdomain": Case(
        {("example-value", "warning", "agent.internal_domains[1]")},
        agent='internal_domains = ["acme.com", "mail.example.org"]',
    ),
    "invalid-and-test-domains": Case(
        {
            ("example-value", "warning", "agent.internal_domains[1]"),
            ("example-value", "warning", "agent.internal_domains[2]"),
        },
        agent='internal_domains = ["acme.com", "corp.invalid", "shop.test"]',
    ),
    "example-never-log": Case(
        {("example-value", "warning", "privacy.never_log[1]")},
        privacy='never_log = ["hr@acme.com", "*@example.net"]',
    ),
    "example-account": Case(
        {("example-value", "warning", "connectors[0] (ann-mail).account")},
        connector=MBOX.replace("ann@acme.com", "ann@example.com"),
    ),
    "example-imap-host": Case(
        {("example-value", "warning", "connectors[0] (ann-imap).host")},
        connector='name = "ann-imap"\nkind = "imap"\naccount = "ann@acme.com"\n'
        'host = "imap.example.com"\npassword = "pw"\n',
    ),
    "no-internal-domains": Case(
        {("internal-domains-empty", "warning", "agent.internal_domains")}, agent=""
    ),
    "no-connectors": Case({("no-connectors", "warning", "connectors")}, connector=None),
    "account-outside-the-domains": Case(
        {("account-outside-domains", "warning", "connectors[0] (ann-mail).account")},
        connector=MBOX.replace("ann@acme.com", "ann@globex.io"),
    ),
    "free-mail-account-is-fine": Case(
        set(), connector=MBOX.replace("ann@acme.com", "ann.lee@gmail.com")
    ),
    "loose-database": Case(
        {("loose-file", "warning", "{folder}/crm.db")},
        prepare=lambda folder: (folder / "crm.db").chmod(0o644),
    ),
    "database-missing": Case(
        {("database-missing", "error", "database.url")}, database='url = "sqlite:///nope.db"'
    ),
    "database-empty": Case(
        {("database-empty", "error", "database.url")},
        database='url = "sqlite:///empty.db"',
        prepare=lambda folder: create_private_file(folder / "empty.db"),
    ),
    "schema-old": Case({("schema-old", "error", "database.url")}, prepare=_old_schema),
    "database-url-variable-unset": Case(
        {("variable-unset", "error", "database.url")},
        database='url = "postgresql+psycopg://crm:${DOCTOR_TEST_DB_PW}@db.acme.com/crm"',
    ),
    "imap-without-password": Case(
        {("setting-missing", "error", "connectors[0] (ann-imap)")},
        connector='name = "ann-imap"\nkind = "imap"\naccount = "ann@acme.com"\n'
        'host = "imap.acme.com"\n',
    ),
    "imap-password-variable-unset": Case(
        {("variable-unset", "error", "connectors[0] (ann-imap).password")},
        connector='name = "ann-imap"\nkind = "imap"\naccount = "ann@acme.com"\n'
        'host = "imap.acme.com"\npassword = "${DOCTOR_TEST_IMAP_PW}"\n',
    ),
    "mbox-path-missing": Case(
        {("path-missing", "error", "connectors[0] (ann-mail)")},
        connector=MBOX.replace("ann.mbox", "gone.mbox"),
    ),
    "service-account-without-key-file": Case(
        {("setting-missing", "error", "connectors[0] (ann-gmail)")},
        connector='name = "ann-gmail"\nkind = "gmail"\naccount = "ann@acme.com"\n'
        'auth = "service_account"\n',
    ),
    "service-account-key-of-another-type": Case(
        {("secret-missing", "error", "connectors[0] (ann-gmail)")},
        connector='name = "ann-gmail"\nkind = "gmail"\naccount = "ann@acme.com"\n'
        'auth = "service_account"\nkey_file = "sa.json"\n',
        prepare=_json_file("sa.json", {"type": "authorized_user"}),
    ),
    "service-account-key-usable": Case(
        set(),
        connector='name = "ann-gmail"\nkind = "gmail"\naccount = "ann@acme.com"\n'
        'auth = "service_account"\nkey_file = "sa.json"\n',
        prepare=_json_file(
            "sa.json", {"type": "service_account", "client_email": "a@b", "private_key": "k"}
        ),
    ),
    "oauth-without-a-token-key": Case(
        {("token-store", "error", "connectors[0] (ann-calendar)")},
        connector='name = "ann-calendar"\nkind = "google_calendar"\naccount = "ann@acme.com"\n',
    ),
    "oauth-without-a-grant": Case(
        {("secret-missing", "error", "connectors[0] (ann-calendar)")},
        connector='name = "ann-calendar"\nkind = "google_calendar"\naccount = "ann@acme.com"\n'
        'client_secrets = "client.json"\n',
        prepare=_key_and_client,
    ),
    "disabled-connector-is-not-checked": Case(
        set(), connector=MBOX.replace("ann.mbox", "gone.mbox") + "enabled = false\n"
    ),
}


def _write(folder: Path, case: Case) -> Path:
    connector = f"[[connectors]]\n{case.connector}" if case.connector else ""
    config = folder / "crm-sync.toml"
    config.write_text(
        f"[database]\n{case.database}\n\n[agent]\n{case.agent}\n\n[privacy]\n{case.privacy}\n\n"
        f"{connector}"
    )
    return config


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with a current SQLite database and Ann's mbox, and no secrets in the shell."""
    engine = make_engine(f"sqlite:///{tmp_path / 'crm.db'}")
    upgrade(engine)
    engine.dispose()
    (tmp_path / "ann.mbox").write_text("")
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith(("CRM_SYNC_", "DOCTOR_TEST_"))]:
            patch.delenv(name)
        yield tmp_path


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_finding(folder: Path, case: Case) -> None:
    case.prepare(folder)
    config = _write(folder, case)
    settings, _, unset = load_leniently(config)
    found = diagnose(settings, config.parent, unset=unset)
    expected = {(c, level, where.format(folder=folder)) for c, level, where in case.expected}
    assert {(f.check, f.level, f.where) for f in found} == expected, [f.line() for f in found]
    for finding in found:
        assert finding.problem and finding.fix, finding
    assert "DOCTOR_TEST_DB_PW" not in os.environ, "a placeholder outlived the check"


@pytest.mark.parametrize(
    ("name", "example"),
    [
        ("example.com", True), ("EXAMPLE.ORG.", True), ("sales.example.net", True),
        ("bob@example.com", True), ("*@lawyers.example.com", True), ("acme.example", True),
        ("x.invalid", True), ("shop.test", True), ("localhost", True),
        ("acme.com", False), ("example.co.uk", False), ("examples.com", False),
        ("test.com", False), ("bob@acme.com", False), ("", False),
    ],
)  # fmt: skip
def test_what_counts_as_an_example_name(name: str, example: bool) -> None:
    assert looks_like_example(name) is example


# ------------------------------------------------------------------------- the command


def _examples_config(folder: Path) -> None:
    """A working config whose values are the documentation's examples."""
    (folder / "crm-sync.toml").write_text(
        '[database]\nurl = "sqlite:///crm.db"\n\n'
        '[agent]\ninternal_domains = ["example.com"]\n\n'
        '[privacy]\nnever_log = ["hr@example.com"]\n\n'
        '[[connectors]]\nname = "bob-mail"\nkind = "mbox"\naccount = "bob@example.com"\n'
        'path = "ann.mbox"\n'
    )


def test_a_config_of_examples_warns_line_by_line_and_exits_0(folder: Path) -> None:
    _examples_config(folder)
    result = run_cli("doctor", cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "checked crm-sync.toml"
    assert lines[-1] == "0 errors, 3 warnings"
    findings = lines[1:-1]
    assert [line.split(": ", 2)[:2] for line in findings] == [
        ["warning", "agent.internal_domains[0]"],
        ["warning", "privacy.never_log[0]"],
        ["warning", "connectors[0] (bob-mail).account"],
    ]
    assert all("'" in line and "; replace it with" in line for line in findings)
    print("\n--- crm-sync doctor on a config of examples\n" + result.stdout)

    status = run_cli("status", cwd=folder)
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines()[-1] == "3 warnings: run `crm-sync doctor`"


def test_an_error_exits_1_and_status_counts_it(folder: Path) -> None:
    _examples_config(folder)
    (folder / "ann.mbox").unlink()
    result = run_cli("doctor", cwd=folder)
    assert result.returncode == 1
    assert result.stdout.splitlines()[1].startswith(
        f"error: connectors[0] (bob-mail): {folder / 'ann.mbox'} does not exist; "
    )
    assert result.stdout.splitlines()[-1] == "1 error, 3 warnings"

    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    named = run_cli("--config", "../crm-sync.toml", "status", "--json", cwd=elsewhere)
    assert json.loads(named.stdout)[0]["connector"] == "bob-mail"
    assert named.stderr.splitlines()[-1] == (
        "1 error, 3 warnings: run `crm-sync --config ../crm-sync.toml doctor`"
    )


def test_a_finding_prints_toml_brackets_literally(folder: Path) -> None:
    _write(folder, Case(set(), connector=None))
    result = run_cli("doctor", cwd=folder)
    assert result.returncode == 0, result.stderr
    assert "warning: connectors: no [[connectors]] table: nothing is synced; add one with " in (
        result.stdout
    )


def test_json_gives_every_finding_and_secrets_are_not_needed_in_the_shell(folder: Path) -> None:
    _write(
        folder,
        Case(
            set(),
            connector='name = "ann-imap"\nkind = "imap"\naccount = "ann@acme.com"\n'
            'host = "imap.acme.com"\npassword = "${DOCTOR_TEST_IMAP_PW}"\n',
        ),
    )
    result = run_cli("doctor", "--json", cwd=folder)
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout) == [
        Finding(
            "variable-unset",
            "error",
            "connectors[0] (ann-imap).password",
            "uses ${DOCTOR_TEST_IMAP_PW}, which is not set here",
            "set DOCTOR_TEST_IMAP_PW where the agent runs (the service's environment file) "
            "and in this shell to check it",
        ).as_row()
    ]
    fine = run_cli("doctor", cwd=folder, env={"DOCTOR_TEST_IMAP_PW": "pw"})
    assert (fine.returncode, fine.stdout.splitlines()[-1]) == (0, "nothing to fix")


def test_a_fix_names_the_config_file_when_it_must_and_runs_as_printed(folder: Path) -> None:
    _write(folder, Case(set(), database='url = "sqlite:///new.db"'))
    elsewhere = folder / "elsewhere"
    elsewhere.mkdir()
    found = run_cli("--config", "../crm-sync.toml", "doctor", cwd=elsewhere)
    assert found.returncode == 1
    (line,) = [line for line in found.stdout.splitlines() if line.startswith("error:")]
    (fix,) = re.findall(r"run `([^`]+)` to create it", line)
    assert fix == "crm-sync --config ../crm-sync.toml db upgrade"
    done = run_cli(*shlex.split(fix)[1:], cwd=elsewhere)
    assert done.returncode == 0, done.stderr
    again = run_cli("--config", "../crm-sync.toml", "doctor", cwd=elsewhere)
    assert (again.returncode, again.stdout.splitlines()[-1]) == (0, "nothing to fix")
