"""A throwaway Dovecot IMAP server on a free loopback port, for tests and benches.

Debian's ``dovecot`` binary runs unprivileged with a config written into a
temporary directory: passwd-file users with ``{PLAIN}`` passwords, Maildir
mail under the same directory, plain IMAP on loopback (TLS on request), a
``\\Sent`` special-use folder (RFC 6154) and Dovecot's default capabilities
(CONDSTORE, QRESYNC, IDLE). When started as root the server runs as the
``dovecot`` system user the package creates, so no process of the test server
keeps root.

On request (``oauth_introspection_url``) the server also takes the SASL
XOAUTH2 and OAUTHBEARER (RFC 7628) logins that Gmail and Outlook take OAuth
access tokens with, each token checked by Dovecot's ``oauth2`` passdb at a
token introspection endpoint (RFC 7662, :mod:`tests.support.token_introspection`);
passwords keep working beside them.

Where the binary is missing, :func:`ensure_dovecot` installs it (as root, when
``CI=true`` or ``CRM_SYNC_INSTALL_TEST_SERVERS=1``) or raises
:class:`DovecotUnavailable` with the way to install it; tests turn that into a
skip, or a failure under ``CI=true``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from imapclient import IMAPClient

from tests.support.processes import children

REPO = Path(__file__).resolve().parents[2]
INSTALL_SCRIPT = REPO / "tests" / "setup" / "install_dovecot.sh"
HOW_TO_INSTALL = (
    "Dovecot is not installed: run `sudo bash tests/setup/install_dovecot.sh` "
    "(Debian's dovecot-imapd), or set CRM_SYNC_INSTALL_TEST_SERVERS=1 when running as root"
)
_SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/local/sbin"])
_SERVICE_USER = "dovecot"
_START_TIMEOUT = 15.0


class DovecotUnavailable(RuntimeError):
    """Dovecot cannot be found or started here; the message says why and what to do."""


@dataclass(frozen=True)
class ImapUser:
    """A mailbox on the test server: login name, password and the owner's address."""

    login: str
    password: str

    @property
    def address(self) -> str:
        return self.login if "@" in self.login else f"{self.login}@example.com"


DEFAULT_USERS = (
    ImapUser("alice@example.com", "alice-secret"),
    ImapUser("bob@example.com", "bob-secret"),
)


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def find_dovecot() -> str | None:
    """The path of the ``dovecot`` binary, also where ``/usr/sbin`` is not on PATH."""
    return shutil.which("dovecot", path=_SEARCH_PATH)


def ensure_dovecot() -> str:
    """The ``dovecot`` binary, installed first where this run may install it."""
    found = find_dovecot()
    if found:
        return found
    allowed = _truthy("CI") or _truthy("CRM_SYNC_INSTALL_TEST_SERVERS")
    if not (allowed and os.geteuid() == 0):
        raise DovecotUnavailable(HOW_TO_INSTALL)
    result = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)], capture_output=True, text=True, check=False
    )
    found = find_dovecot()
    if result.returncode != 0 or not found:
        raise DovecotUnavailable(
            f"{INSTALL_SCRIPT.name} failed ({result.returncode}): {result.stderr[-2000:]}"
        )
    return found


def free_port() -> int:
    """A TCP port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _write_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost, as a test CA of its own."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


OAUTH_MECHANISMS = "xoauth2 oauthbearer"


def _oauth2_settings(introspection_url: str) -> str:
    """The oauth2 passdb's own file (Dovecot 2.3, ``dovecot-oauth2.conf.ext``).

    No ``tokeninfo_url``: every token goes to the introspection endpoint, which
    answers RFC 7662's ``active`` and the ``username`` the login must match.
    """
    return (
        f"introspection_url = {introspection_url}\n"
        "introspection_mode = post\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "timeout_msecs = 10000\n"
    )


def _passdbs(root: Path, oauth: bool) -> str:
    """Passwords from the users file; with ``oauth`` also access tokens, each passdb
    asked only for its own mechanisms (a token is never tried as a password)."""
    passdbs = (
        "passdb {\n"
        "  driver = passwd-file\n"
        f"  args = scheme=PLAIN username_format=%u {root}/users\n"
        + ("  mechanisms = plain login\n" if oauth else "")
        + "}\n"
    )
    if oauth:
        passdbs += (
            "passdb {\n"
            "  driver = oauth2\n"
            f"  mechanisms = {OAUTH_MECHANISMS}\n"
            f"  args = {root}/dovecot-oauth2.conf.ext\n"
            "}\n"
        )
    return passdbs


def _config(
    root: Path,
    ports: tuple[int, int],
    account: pwd.struct_passwd,
    capabilities: str | None,
    tls: bool,
    oauth: bool = False,
) -> str:
    port, tls_port = ports
    capability_line = f"imap_capability = {capabilities}\n" if capabilities else ""
    # OAuth tests refuse tokens on purpose; Dovecot's per-IP penalty (up to 15 s) and
    # failure delay would slow every later login from 127.0.0.1. A socket no process
    # may open turns the penalty off.
    unhurried = (
        "auth_failure_delay = 0\n",
        "  unix_listener anvil-auth-penalty {\n    mode = 0\n  }\n",
    )
    failure_delay, anvil_penalty = unhurried if oauth else ("", "")
    ssl_lines = (
        f"ssl = yes\nssl_cert = <{root}/cert.pem\nssl_key = <{root}/key.pem\n"
        if tls
        else "ssl = no\n"
    )
    return (
        capability_line
        + ssl_lines
        + failure_delay
        + f"""\
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = crm-sync-test-{port}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
disable_plaintext_auth = no
auth_mechanisms = plain login{" " + OAUTH_MECHANISMS if oauth else ""}
default_internal_user = {account.pw_name}
default_internal_group = {account.pw_name}
default_login_user = {account.pw_name}
first_valid_uid = {account.pw_uid}
last_valid_uid = {account.pw_uid}
first_valid_gid = 0
mail_location = maildir:{root}/mail/%u
mail_fsync = never
{_passdbs(root, oauth)}userdb {{
  driver = passwd-file
  args = username_format=%u {root}/users
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
  mailbox Trash {{
    special_use = \\Trash
    auto = subscribe
  }}
}}
service anvil {{
  chroot =
{anvil_penalty}}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port if tls else 0}
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = 0
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
service submission-login {{
  inet_listener submission {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0600
  }}
}}
"""
    )


@dataclass
class DovecotServer:
    """One running Dovecot; its files live under ``root`` and vanish with :meth:`close`.

    ``capabilities`` replaces the advertised CAPABILITY list, to play an older
    server (no CONDSTORE, no LIST-STATUS...). ``tls`` adds STARTTLS on ``port``
    and implicit TLS on ``tls_port`` with a self-signed certificate that
    :meth:`ssl_context` trusts. ``oauth_introspection_url`` (off by default)
    adds the XOAUTH2 and OAUTHBEARER mechanisms, their tokens checked at that
    RFC 7662 endpoint; the login log line then says ``method=XOAUTH2``.
    """

    binary: str
    root: Path
    users: Sequence[ImapUser]
    capabilities: str | None = None
    tls: bool = False
    oauth_introspection_url: str | None = None
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    _process: subprocess.Popen[bytes] | None = None

    @property
    def config_path(self) -> Path:
        return self.root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self.root / "dovecot.log"

    def maildir(self, user: ImapUser, folder: str = "INBOX") -> Path:
        """The Maildir++ directory of ``folder``, for writing many messages without APPEND."""
        base = self.root / "mail" / user.login
        return base if folder == "INBOX" else base / ("." + folder.replace("/", "."))

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate and nothing else."""
        return ssl.create_default_context(cafile=str(self.root / "cert.pem"))

    def _account(self) -> pwd.struct_passwd:
        return pwd.getpwnam(_SERVICE_USER) if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())

    def prepare(self) -> None:
        """Write the config, the users and the directories, owned by the server's account."""
        account = self._account()
        for sub in ("run", "state", "mail", "home"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        if self.tls:
            _write_certificate(self.root / "cert.pem", self.root / "key.pem")
        oauth = self.oauth_introspection_url is not None
        self.config_path.write_text(
            _config(
                self.root, (self.port, self.tls_port), account, self.capabilities, self.tls, oauth
            )
        )
        if self.oauth_introspection_url is not None:
            (self.root / "dovecot-oauth2.conf.ext").write_text(
                _oauth2_settings(self.oauth_introspection_url)
            )
        (self.root / "users").write_text(
            "".join(
                f"{user.login}:{{PLAIN}}{user.password}:{account.pw_uid}:{account.pw_gid}"
                f"::{self.root}/home/{user.login}::\n"
                for user in self.users
            )
        )
        self.chown()

    def chown(self) -> None:
        """Give every file under ``root`` to the server's account (after writing Maildirs)."""
        if os.geteuid() != 0:
            return
        account = self._account()
        os.chown(self.root, account.pw_uid, account.pw_gid)
        for directory, dirs, files in os.walk(self.root):
            for name in (*dirs, *files):
                os.chown(os.path.join(directory, name), account.pw_uid, account.pw_gid)

    def start(self) -> None:
        """Start the server and wait until it greets on its port."""
        if not self.config_path.exists():
            self.prepare()
        account = self._account()
        as_root = os.geteuid() == 0
        with open(self.root / "stderr.log", "ab") as stderr:
            self._process = subprocess.Popen(
                [self.binary, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
                user=account.pw_uid if as_root else None,
                group=account.pw_gid if as_root else None,
                extra_groups=[] if as_root else None,
                env={"PATH": _SEARCH_PATH, "HOME": str(self.root / "home")},
                start_new_session=True,
            )
        deadline = time.monotonic() + _START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                break
            with (
                contextlib.suppress(OSError),
                socket.create_connection((self.host, self.port), timeout=1) as probe,
            ):
                if probe.recv(64).startswith(b"* OK"):
                    return
            time.sleep(0.05)
        self.stop()
        raise DovecotUnavailable(f"dovecot did not start on port {self.port}: {self._logs()}")

    def _logs(self) -> str:
        texts = []
        for name in ("stderr.log", "dovecot.log"):
            path = self.root / name
            if path.exists():
                texts.append(path.read_text(errors="replace")[-3000:])
        return "\n".join(texts)

    def stop(self) -> None:
        """Stop the server (and with it every open connection)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)

    def restart(self) -> None:
        self.stop()
        self.start()

    def drop_connections(self) -> int:
        """Kill the server's IMAP session processes, as a network failure would; return how many.

        The master and login processes live on, so the next connection works.
        """
        assert self._process is not None
        killed = 0
        for pid in children(self._process.pid):
            if _command_name(pid) == "imap":
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
        return killed

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- mailbox helpers, over IMAP like any client --------------------------------------

    @contextlib.contextmanager
    def client(self, user: ImapUser) -> Iterator[IMAPClient]:
        client = IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        try:
            client.login(user.login, user.password)
            yield client
        finally:
            with contextlib.suppress(Exception):
                client.logout()

    def append(
        self,
        user: ImapUser,
        folder: str,
        messages: Iterable[bytes],
        *,
        flags: Sequence[str] = (),
        msg_time: datetime | None = None,
    ) -> list[int]:
        """APPEND each message to ``folder`` (created if missing); return the new UIDs."""
        uids: list[int] = []
        with self.client(user) as client:
            if not client.folder_exists(folder):
                client.create_folder(folder)
            for raw in messages:
                response = client.append(folder, raw, flags=flags, msg_time=msg_time)
                uids.append(_appended_uid(response))
        return uids

    def set_flags(
        self, user: ImapUser, folder: str, uids: Sequence[int], flags: Sequence[str]
    ) -> None:
        with self.client(user) as client:
            client.select_folder(folder)
            client.set_flags(list(uids), list(flags), silent=True)

    def flags(self, user: ImapUser, folder: str) -> dict[int, frozenset[str]]:
        """Every message's flags, read without changing them (EXAMINE)."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            fetched = client.fetch(client.search("ALL"), ["FLAGS"])
            return {
                uid: frozenset(flag.decode() for flag in data[b"FLAGS"])
                for uid, data in fetched.items()
            }

    def uids(self, user: ImapUser, folder: str) -> list[int]:
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def expunge(self, user: ImapUser, folder: str, uids: Sequence[int]) -> None:
        with self.client(user) as client:
            client.select_folder(folder)
            client.delete_messages(list(uids), silent=True)
            client.uid_expunge(list(uids))

    def recreate_folder(self, user: ImapUser, folder: str) -> None:
        """Delete and create ``folder`` again: its UIDVALIDITY changes, its mail is gone."""
        with self.client(user) as client:
            client.delete_folder(folder)
            client.create_folder(folder)


def _appended_uid(response: bytes) -> int:
    """The UID from an ``[APPENDUID uidvalidity uid]`` response code (RFC 4315)."""
    text = response.decode(errors="replace")
    marker = "APPENDUID "
    start = text.index(marker) + len(marker)
    return int(text[start:].split("]", 1)[0].split()[1])


def _command_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


@contextlib.contextmanager
def running_dovecot(
    users: Sequence[ImapUser] = DEFAULT_USERS,
    capabilities: str | None = None,
    before_start: Callable[[DovecotServer], object] | None = None,
    *,
    tls: bool = False,
    oauth_introspection_url: str | None = None,
) -> Iterator[DovecotServer]:
    """A started server for the ``with`` block, its directory removed afterwards.

    ``before_start`` may fill the Maildirs directly (see :meth:`DovecotServer.maildir`),
    far faster than APPEND for big mailboxes. The directory is made with
    :func:`tempfile.mkdtemp` rather than pytest's ``tmp_path`` because the
    unprivileged server must be able to reach it.
    """
    server = DovecotServer(
        binary=ensure_dovecot(),
        root=Path(tempfile.mkdtemp(prefix="crm-sync-dovecot-")),
        users=users,
        capabilities=capabilities,
        tls=tls,
        oauth_introspection_url=oauth_introspection_url,
    )
    try:
        server.prepare()
        if before_start is not None:
            before_start(server)
            server.chown()
        server.start()
        yield server
    finally:
        server.close()
