"""What ``crm-sync doctor`` checks: the mistakes an admin can make that no error reports.

A config that loads can still be wrong in ways the agent cannot refuse: a
placeholder left as written (``internal_domains = ["example.com"]`` makes
every colleague a customer contact, and the team's own company a
customer), a database file other users can read, a schema one version
behind, a connector whose password variable is unset where the admin
looks. Each check here says what is wrong, where, and the fix, and never
connects to a mailbox (``crm-sync connectors test NAME`` does that): it is
cheap enough for ``status`` to run on every call.

A finding is an *error* when the agent cannot work as configured, and a
*warning* when it works but probably not as meant.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Engine

from agent.mail.addresses import FreeMail, load_free_mail, normalize_domain
from agent.runtime.db_errors import ENCODE_HINT, describe, parse_url
from agent.runtime.file_modes import loose_files
from agent.runtime.registry import token_store
from config import ConfigError, Settings, load_settings
from config.edit import PLACEHOLDER
from config.loader import ENV_DATABASE_URL, key_path, resolve
from config.schema import ConnectorConfig
from config.schema import GmailConnector as GmailConfig
from config.schema import GoogleCalendarConnector as CalendarConfig
from config.schema import IcsConnector as IcsConfig
from config.schema import ImapConnector as ImapConfig
from config.schema import MboxConnector as MboxConfig
from config.secrets import SecretStoreError
from connectors.errors import AuthError
from storage.db import MIGRATIONS, current_revision, head_revision, make_engine, sqlite_path

Level = Literal["error", "warning"]

EXAMPLE_DOMAINS = frozenset({"example.com", "example.org", "example.net"})
EXAMPLE_SUFFIXES = frozenset({"example", "invalid", "test", "localhost"})
"""Names reserved for documentation and tests (RFC 2606, RFC 6761): never a real mailbox."""

CONNECT_TIMEOUT_SECONDS = 10

Command = Callable[..., str]
"""Words -> the ``crm-sync`` command line a fix asks to run, as it will run (the CLI adds
``--config PATH`` where the file would not be found without it)."""


def plain_command(*words: str) -> str:
    return shlex.join(["crm-sync", *words])


_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Finding:
    """One thing wrong or doubtful, where it is, and what to do about it."""

    check: str
    """A stable name for the kind of finding (``example-value``, ``schema-old``...)."""
    level: Level
    where: str
    problem: str
    fix: str

    def line(self) -> str:
        return f"{self.level}: {self.where}: {self.problem}; {self.fix}"

    def as_row(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class UnsetVariable:
    """A ``${VAR}`` the config uses that this environment does not set."""

    where: str
    variable: str


def looks_like_example(domain_or_address: str) -> bool:
    """Whether a domain, an address or a ``*@domain`` pattern is at a reserved example name."""
    domain = domain_or_address.strip().lower().rpartition("@")[2].rstrip(".")
    if not domain:
        return False
    if any(domain == d or domain.endswith("." + d) for d in EXAMPLE_DOMAINS):
        return True
    return domain.rpartition(".")[2] in EXAMPLE_SUFFIXES


# ------------------------------------------------------------------------------ loading


def load_leniently(
    explicit: Path | None,
) -> tuple[Settings, Path | None, list[UnsetVariable]]:
    """The settings, as ``load_settings`` reads them, even where a ``${VAR}`` is unset.

    An admin's shell rarely holds the agent's secrets (the service's
    environment file does), and one unset variable must not hide every other
    finding. A connector's are left unresolved by the loader itself (and
    reported per connector); one elsewhere (the database URL) is reported
    and read as a placeholder. Any other config error is raised as it is.
    """
    try:
        settings, path = load_settings(explicit)
        return settings, path, []
    except ConfigError as exc:
        unset = _unset_variables(exc.path)
        if not unset:
            raise
    with _placeholders({u.variable for u in unset}):
        settings, path = load_settings(explicit)
    return settings, path, unset


def _unset_variables(path: Path | None) -> list[UnsetVariable]:
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return []
    return [
        UnsetVariable(key_path(where), name)
        for where, name in _references(data, ())
        if name not in os.environ and where[:1] != ("connectors",)
    ]


def _references(
    value: Any, where: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        for match in _VARIABLE.finditer(value):
            yield where, match.group(1)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _references(item, (*where, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _references(item, (*where, index))


@contextmanager
def _placeholders(names: set[str]) -> Iterator[None]:
    for name in names:
        os.environ[name] = PLACEHOLDER
    try:
        yield
    finally:
        for name in names:
            os.environ.pop(name, None)


# ------------------------------------------------------------------------------- checks


def diagnose(
    settings: Settings,
    base: Path,
    *,
    unset: Sequence[UnsetVariable] = (),
    database: bool = True,
    command: Command = plain_command,
) -> list[Finding]:
    """Every finding, errors first; ``database=False`` leaves out the one check that connects."""
    base = base.absolute()
    found = [_unset(u.where, u.variable) for u in unset]
    found += settings_findings(settings, command)
    found += file_findings(settings, base)
    if database and not any(u.where.startswith("database") for u in unset):
        found += database_findings(settings.database.url, command)
    for index, config in enumerate(settings.connectors):
        if config.enabled:
            found += connector_findings(index, config, settings, base, command)
    return sorted(found, key=lambda f: f.level != "error")


def _unset(where: str, variable: str) -> Finding:
    return Finding(
        "variable-unset",
        "error",
        where,
        f"uses ${{{variable}}}, which is not set here",
        f"set {variable} where the agent runs (the service's environment file) "
        "and in this shell to check it",
    )


def settings_findings(settings: Settings, command: Command = plain_command) -> list[Finding]:
    """Placeholders left as written, and what an empty config still lacks."""
    found: list[Finding] = []
    for index, domain in enumerate(settings.agent.internal_domains):
        found += _example(
            f"agent.internal_domains[{index}]",
            domain,
            "replace it with your company's own email domain: while it stands, your "
            "colleagues become customer contacts and your company a customer",
        )
    for index, pattern in enumerate(settings.privacy.never_log):
        found += _example(
            f"privacy.never_log[{index}]", pattern, "replace it with a real address or *@domain"
        )
    for index, config in enumerate(settings.connectors):
        where = f"connectors[{index}] ({config.name})"
        fix = "replace it with the mailbox's real address"
        found += _example(f"{where}.account", config.account, fix)
        if isinstance(config, ImapConfig):
            found += _example(f"{where}.host", config.host, "replace it with your IMAP server")
    if not settings.agent.internal_domains:
        found.append(
            Finding(
                "internal-domains-empty",
                "warning",
                "agent.internal_domains",
                "not set: only each mailbox's own domain counts as your company's",
                "add internal_domains = [...] under [agent], with every domain your "
                "colleagues write from",
            )
        )
    else:
        found += _accounts_outside(settings)
    if not settings.connectors:
        found.append(
            Finding(
                "no-connectors",
                "warning",
                "connectors",
                "no [[connectors]] table: nothing is synced",
                f"add one with `{command('connectors', 'add', 'imap')} --name NAME --account "
                "ADDRESS --host HOST --password-env VAR` (or gmail, google_calendar, mbox, ics)",
            )
        )
    return found


def _example(where: str, value: str, fix: str) -> list[Finding]:
    if not looks_like_example(value):
        return []
    return [
        Finding(
            "example-value",
            "warning",
            where,
            f"{value!r} is an example (a name reserved for documentation, no one's real one)",
            fix,
        )
    ]


def _accounts_outside(settings: Settings) -> list[Finding]:
    """A mailbox at a domain missing from the list: its colleagues would become customers."""
    internal = settings.agent.internal_domains
    free_mail = _free_mail(settings)
    found: list[Finding] = []
    for index, config in enumerate(settings.connectors):
        domain = normalize_domain(config.account.rpartition("@")[2])
        if domain is None or looks_like_example(domain) or free_mail.is_free(domain):
            continue
        if any(domain == d or domain.endswith("." + d) for d in internal):
            continue
        found.append(
            Finding(
                "account-outside-domains",
                "warning",
                f"connectors[{index}] ({config.name}).account",
                f"{config.account} is not at one of agent.internal_domains, so its "
                "colleagues at that domain would become customer contacts",
                f'add "{domain}" to agent.internal_domains if it is yours',
            )
        )
    return found


def _free_mail(settings: Settings) -> FreeMail:
    try:
        return load_free_mail(
            settings.agent.free_mail_domains, settings.agent.not_free_mail_domains
        )
    except ValueError:
        return load_free_mail()


def file_findings(settings: Settings, base: Path) -> list[Finding]:
    """Private files (database, token key, tokens) that other users can read or change."""
    return [
        Finding(
            "loose-file",
            "warning",
            str(loose.path),
            f"mode {loose.mode:04o}: other users can read or change it",
            f"run `chmod {'700' if loose.folder else '600'} {loose.path}`",
        )
        for loose in loose_files(settings, base)
    ]


# ----------------------------------------------------------------------------- database


def database_findings(url: str, command: Command = plain_command) -> list[Finding]:
    """Whether the database answers and holds this version's schema; creates nothing."""
    where = f"${ENV_DATABASE_URL}" if os.environ.get(ENV_DATABASE_URL) else "database.url"
    parsed = parse_url(url)
    if parsed is None:
        return [Finding("database-url", "error", where, "not a valid URL", ENCODE_HINT)]
    shown = parsed.render_as_string(hide_password=True)
    path = sqlite_path(url)
    if path is not None and not path.exists():
        return [
            Finding(
                "database-missing",
                "error",
                where,
                f"the SQLite file {path} does not exist yet",
                f"run `{command('db', 'upgrade')}` to create it",
            )
        ]
    try:
        revision = _revision(_engine(url, sqlite=path is not None))
    except Exception as exc:
        problem = describe(exc, parsed)
        return [Finding("database-unreachable", "error", where, problem.what, _fix(problem.fix))]
    return _schema_findings(where, shown, revision, f"`{command('db', 'upgrade')}`")


def _engine(url: str, *, sqlite: bool) -> Engine:
    if sqlite:
        return make_engine(url)
    return make_engine(url, connect_args={"connect_timeout": CONNECT_TIMEOUT_SECONDS})


def _revision(engine: Engine) -> str | None:
    try:
        return current_revision(engine)
    finally:
        engine.dispose()


def _fix(fix: str) -> str:
    return fix or "check the URL, the server and the credentials"


def _schema_findings(where: str, shown: str, revision: str | None, upgrade: str) -> list[Finding]:
    head = head_revision()
    if revision == head:
        return []
    if revision is None:
        return [
            Finding(
                "database-empty",
                "error",
                where,
                f"{shown} holds no crm-sync tables",
                f"run {upgrade} to create them",
            )
        ]
    if revision not in _known_revisions():
        return [
            Finding(
                "schema-newer",
                "error",
                where,
                f"{shown} is at revision {revision}, which this version of crm-sync "
                "does not know (a newer one migrated it)",
                "upgrade crm-sync to the version the other agents run",
            )
        ]
    return [
        Finding(
            "schema-old",
            "error",
            where,
            f"{shown} is at revision {revision}; this version needs {head}",
            f"run {upgrade}",
        )
    ]


def _known_revisions() -> set[str]:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return {script.revision for script in ScriptDirectory.from_config(config).walk_revisions()}


# --------------------------------------------------------------------------- connectors


def connector_findings(
    index: int,
    config: ConnectorConfig,
    settings: Settings,
    base: Path,
    command: Command = plain_command,
) -> list[Finding]:
    """The settings and secrets connector ``index`` needs to start, checked without connecting."""
    where = f"connectors[{index}] ({config.name})"
    unset = [
        (key_path(value.where[2:]), name)
        for value in config.unresolved
        for name in value.variables
        if name not in os.environ
    ]
    if unset:
        return [_unset(f"{where}.{key}", name) for key, name in unset]
    try:
        problems = _CHECKS[config.kind](resolve(config), settings, base, command)
    except ConfigError as exc:
        problems = [("setting-invalid", problem, "correct it") for problem in exc.problems]
    test = f"then `{command('connectors', 'test', config.name)}`"
    return [
        Finding(check, "error", where, problem, f"{fix}; {test}")
        for check, problem, fix in problems
    ]


Problem = tuple[str, str, str]
"""(check, problem, fix) of one connector."""


def _imap(config: ImapConfig, _settings: Settings, _base: Path, _: Command) -> list[Problem]:
    if config.password:
        return []
    variable = f"{_variable_stem(config.name)}_PASSWORD"
    return [
        (
            "setting-missing",
            "no password",
            f'add password = "${{{variable}}}" to its table and set {variable} '
            "where the agent runs",
        )
    ]


def _variable_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() else "_" for c in name.upper())
    return stem if stem[:1].isalpha() else f"MAIL_{stem}"


def _files(
    config: MboxConfig | IcsConfig, _settings: Settings, base: Path, _: Command
) -> list[Problem]:
    path = base / config.path
    if not path.exists():
        return [("path-missing", f"{path} does not exist", "correct path, or put the export there")]
    if not os.access(path, os.R_OK):
        return [("path-unreadable", f"cannot read {path}", "let the agent's user read it")]
    return []


def _google(
    config: GmailConfig | CalendarConfig, settings: Settings, base: Path, command: Command
) -> list[Problem]:
    if config.auth == "service_account":
        if config.key_file is None:
            return [
                (
                    "setting-missing",
                    "uses a service account but sets no key_file",
                    "set key_file to the service account's JSON key",
                )
            ]
        problem = service_account_key_problem(base / config.key_file)
        if problem is not None:
            fix = "download the service account's JSON key and set key_file to it"
            return [("secret-missing", problem, fix)]
        return []
    return _oauth(config, settings, base, command)


def _oauth(
    config: GmailConfig | CalendarConfig, settings: Settings, base: Path, command: Command
) -> list[Problem]:
    try:
        record = token_store(settings, base).load(config.name)
    except (AuthError, SecretStoreError) as exc:
        return [("token-store", str(exc), "see [secrets] in the config")]
    if record is not None:
        return []
    auth = f"run `{command('connectors', 'auth', config.name)}`"
    if config.client_secrets is None:
        fix = "set client_secrets to the OAuth client's JSON file (Google Cloud console), then "
        return [("secret-missing", "no OAuth grant yet, and no client_secrets", fix + auth)]
    if not (base / config.client_secrets).is_file():
        return [
            (
                "secret-missing",
                f"no OAuth grant yet, and client_secrets {base / config.client_secrets} "
                "does not exist",
                f"download the OAuth client's JSON file there, then {auth}",
            )
        ]
    return [("secret-missing", "no OAuth grant yet", auth)]


def service_account_key_problem(path: Path) -> str | None:
    """What is wrong with a service account's JSON key file, or None when it looks usable."""
    try:
        info = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return f"the key file {path} does not exist"
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"{path} is not a readable JSON key ({exc})"
    if not isinstance(info, dict) or info.get("type") != "service_account":
        return f"{path} is not a service account key (its type must be service_account)"
    if not info.get("client_email") or not info.get("private_key"):
        return f"{path} lacks client_email or private_key"
    return None


_CHECKS: Mapping[str, Callable[[Any, Settings, Path, Command], list[Problem]]] = {
    "imap": _imap,
    "mbox": _files,
    "ics": _files,
    "gmail": _google,
    "google_calendar": _google,
}
"""Kind -> its check; the schema ties each kind to the class its check takes."""


def counts(findings: Sequence[Finding]) -> tuple[int, int]:
    """(errors, warnings)."""
    errors = sum(f.level == "error" for f in findings)
    return errors, len(findings) - errors
