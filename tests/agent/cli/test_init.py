"""`crm-sync init`: asked on a terminal, all examples commented out without one.

A placeholder written as a live setting (``internal_domains = ["example.com"]``)
once made colleagues into customer contacts. So without a terminal init
writes nothing live, and on one it asks and checks every answer; both go
through the real entry point, the terminal through a pseudo-terminal.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from agent.cli.init_config import fill, template
from config import load_settings
from config.schema import Settings
from tests.support.cli import run_cli
from tests.support.terminal import run_on_terminal

_LIVE_KEY = re.compile(r"^\s*[A-Za-z_]+\s*=")


def _live_lines(text: str) -> list[str]:
    """Every line that sets a key (not a comment, not a table header)."""
    return [line for line in text.splitlines() if _LIVE_KEY.match(line)]


def test_without_a_terminal_init_writes_the_example_with_every_setting_commented_out(
    tmp_path: Path,
) -> None:
    result = run_cli("init", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    written = (tmp_path / "crm-sync.toml").read_text("utf-8")
    shipped = (Path(__file__).parents[3] / "config" / "example.toml").read_text("utf-8")
    assert written == shipped == template()
    assert _live_lines(written) == []
    assert "example.com" in written, "the examples are still there to copy"

    settings, _ = load_settings(tmp_path / "crm-sync.toml")
    defaults = Settings()
    assert settings.connectors == [] and settings.agent.internal_domains == []
    assert settings.agent == defaults.agent and settings.privacy == defaults.privacy

    assert "every setting in it is a commented-out example" in result.stdout
    steps = [line.strip() for line in result.stdout.splitlines() if line.startswith("  crm-sync")]
    assert [step.split()[1] for step in steps] == ["db", "connectors", "doctor", "sync", "run"]


def test_no_input_asks_nothing_even_on_a_terminal(tmp_path: Path) -> None:
    session = run_on_terminal("init", "--no-input", cwd=tmp_path)
    assert session.returncode == 0, session.screen
    assert "?" not in session.screen.split("wrote")[0]
    assert (tmp_path / "crm-sync.toml").read_text("utf-8") == template()


def test_options_answer_without_a_terminal_and_are_checked(tmp_path: Path) -> None:
    done = run_cli(
        "init", "--domain", "Acme.com, acme.co.uk", "--domain", "acme.com",
        "--database", "postgres://crm:${CRM_DB_PASSWORD}@db.acme.com/crm",
        cwd=tmp_path, env={"CRM_DB_PASSWORD": "s3cret"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "crm-sync.toml").read_text("utf-8")
    assert _live_lines(text) == [
        'url = "postgresql+psycopg://crm:${CRM_DB_PASSWORD}@db.acme.com/crm"',
        'internal_domains = ["acme.com", "acme.co.uk"]',
    ]
    assert "s3cret" not in text


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--domain", "example.com", "--domain: example.com is an example name"),
        ("--domain", "gmail.com", "--domain: gmail.com is a free-mail provider"),
        ("--domain", "not a domain!", "--domain: 'not' is not a domain"),
        ("--mailbox", "alice@example.org", "--mailbox: alice@example.org is an example address"),
        ("--mailbox", "alice", "--mailbox: 'alice' is not an email address"),
        ("--database", "mysql://db/crm", "--database: mysql:// is not a database crm-sync uses"),
        ("--database", "postgresql://crm:hunter2@db.acme.com/crm", "a password never goes"),
    ],
    ids=["example-domain", "free-mail", "not-a-domain", "example-mailbox", "not-an-address",
         "other-database", "literal-password"],
)  # fmt: skip
def test_an_option_init_cannot_use_is_refused_and_nothing_written(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    refused = run_cli("init", option, value, cwd=tmp_path)
    assert refused.returncode == 2
    assert message in refused.stderr
    assert "hunter2" not in refused.stderr
    assert not (tmp_path / "crm-sync.toml").exists()


def test_a_mailbox_without_a_terminal_gives_its_domain_and_its_connectors_add(
    tmp_path: Path,
) -> None:
    done = run_cli("init", "--mailbox", "Alice@Acme.com", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert _live_lines((tmp_path / "crm-sync.toml").read_text()) == [
        'internal_domains = ["acme.com"]'
    ]
    assert (
        "  crm-sync connectors add imap --name alice-imap --account alice@acme.com "
        "--host imap.acme.com --password-env ALICE_IMAP_PASSWORD"
    ) in done.stdout.splitlines()


def test_on_a_terminal_init_asks_rechecks_and_writes_the_answers(tmp_path: Path) -> None:
    session = run_on_terminal(
        "init",
        cwd=tmp_path,
        answers=[
            ("its address (Enter: none yet): ", "bob@example.com"),
            ("its address (Enter: none yet): ", "Alice@Acme.com"),
            ("(Enter: none) [acme.com]: ", "acme.com example.net"),
            ("(Enter: none) [acme.com]: ", "acme.com, acme.co.uk"),
            ("How does crm-sync read alice@acme.com? (imap, gmail, later) [imap]: ", ""),
            ("IMAP server [imap.acme.com]: ", "mail.acme.com"),
            ("its password in [ALICE_IMAP_PASSWORD]: ", ""),
            ("URL [crm-sync.db]: ", "data/crm.db"),
        ],
    )
    assert session.returncode == 0, session.screen
    assert "Error: bob@example.com is an example address" in session.screen
    assert "Error: example.net is an example name" in session.screen
    config = tmp_path / "crm-sync.toml"
    text = config.read_text("utf-8")
    assert _live_lines(text) == [
        'url = "sqlite:///data/crm.db"',
        'internal_domains = ["acme.com", "acme.co.uk"]',
        'name = "alice-imap"',
        'kind = "imap"',
        'account = "alice@acme.com"',
        'host = "mail.acme.com"',
        'password = "${ALICE_IMAP_PASSWORD}"',
    ]
    assert "example.com" not in _live_lines(text)
    answered = ("# url = ", "# internal_domains = ")
    assert [line for line in text.splitlines() if line.startswith("#")] == [
        line
        for line in template().splitlines()
        if line.startswith("#") and not line.startswith(answered)
    ], "every explanation stays; only the answered examples became live lines"

    env = {"ALICE_IMAP_PASSWORD": "pw"}
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        settings, _ = load_settings(config)
    assert settings.database.url == f"sqlite:///{(tmp_path / 'data' / 'crm.db').resolve()}"
    assert [c.name for c in settings.connectors] == ["alice-imap"]
    screen = session.screen
    assert screen.index("crm-sync db upgrade") < screen.index("export ALICE_IMAP_PASSWORD=")
    assert screen.index("export ALICE_IMAP_PASSWORD=") < screen.index(
        "crm-sync connectors test alice-imap"
    )
    assert "crm-sync sync --dry-run" in screen
    _show("interactive init", screen)


def test_a_gmail_mailbox_with_a_service_account_key(tmp_path: Path) -> None:
    key = tmp_path / "sa.json"
    key.write_text(json.dumps({"type": "authorized_user"}))
    good = tmp_path / "good.json"
    good.write_text(
        json.dumps({"type": "service_account", "client_email": "a@b.iam", "private_key": "k"})
    )
    session = run_on_terminal(
        "init",
        cwd=tmp_path,
        answers=[
            ("its address (Enter: none yet): ", "carol@globex.io"),
            ("[globex.io]: ", ""),
            ("[imap]: ", "gmail"),
            ("[oauth]: ", "service_account"),
            ("JSON key file: ", str(key)),
            ("JSON key file: ", str(good)),
            ("URL [crm-sync.db]: ", ""),
        ],
    )
    assert session.returncode == 0, session.screen
    assert f"Error: {key} is not a service account key" in session.screen
    text = (tmp_path / "crm-sync.toml").read_text("utf-8")
    assert _live_lines(text) == [
        'internal_domains = ["globex.io"]',
        'name = "carol-gmail"',
        'kind = "gmail"',
        'account = "carol@globex.io"',
        'auth = "service_account"',
        f'key_file = "{good}"',
    ]
    assert "crm-sync connectors test carol-gmail" in session.screen


def test_ctrl_c_on_a_question_writes_nothing(tmp_path: Path) -> None:
    session = run_on_terminal(
        "init", cwd=tmp_path, answers=[("its address (Enter: none yet): ", "\x03")]
    )
    assert session.returncode == 1, session.screen
    assert "aborted" in session.screen
    assert not (tmp_path / "crm-sync.toml").exists()
    assert not (tmp_path / "crm-sync.key").exists()


def test_the_template_holds_an_example_line_for_every_answer() -> None:
    filled = fill(
        template(),
        {("agent", "internal_domains"): ["acme.com"], ("database", "url"): "sqlite:///x.db"},
    )
    data = tomllib.loads(filled)
    assert data["agent"] == {"internal_domains": ["acme.com"]}
    assert data["database"] == {"url": "sqlite:///x.db"}
    with pytest.raises(ValueError, match=r"no example line for agent\.colour"):
        fill(template(), {("agent", "colour"): "red"})


def _show(title: str, text: str) -> None:
    print(f"\n--- {title}\n{text}")
