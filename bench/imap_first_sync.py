"""First sync of a big IMAP mailbox: crm-sync against the mail mirrors, side by side.

A throwaway Dovecot (tests/support/dovecot.py) gets N generated messages
(default 20,000; INBOX and Sent; plain, multipart/alternative and some with a
PDF attachment), written straight into its Maildir before it starts. Dovecot
then indexes and caches them in a warm-up pass that every contender profits
from alike. Then, in rounds that run each contender once in turn, against
the same server: ``crm-sync sync`` (the IMAP connector and the whole
pipeline into SQLite, with its default planning workers, and again planning
in the syncing process alone; the connector alone is timed too, for
reference), ``mbsync`` (isync) mirroring INBOX and Sent into a Maildir (with
its default fsync per message, and without), and ``offlineimap`` doing the
same (in the first round only: it takes minutes). Prints each run on stderr
as it ends, then one JSON line per figure (medians over the rounds), with
the ratios. mbsync's default time depends on how fast the disk syncs, so
the figure against mbsync without fsync is printed too.

Needs ``dovecot``, ``mbsync`` and ``offlineimap``:
``apt-get install dovecot-imapd isync offlineimap3``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors.imap.connector import ImapConnector
from connectors.records import MailMessage
from tests.support.dovecot import DovecotServer, ImapUser, running_dovecot

USER = ImapUser("bench@example.com", "bench-secret")
PARAGRAPH = (
    "Thanks for the call today. As discussed, the revised quote covers the "
    "annual licence, onboarding for twelve seats and priority support.\n"
)
PDF = (b"%PDF-1.4 bench attachment " * 40 + b"\n") * 60


def _message(n: int, rng: random.Random) -> bytes:
    """One generated message: its shape drawn from the mix of a sales mailbox."""
    company = rng.randrange(400)
    header = (
        f"From: Contact {n % 2000} <contact{n % 2000}@customer{company}.test>\r\n"
        f"To: Bench <bench@example.com>\r\n"
        f"Subject: Re: quote {n}\r\n"
        f"Message-ID: <bench-{n}@customer{company}.test>\r\n"
        f"Date: Mon, 06 May 2024 10:{n % 60:02d}:00 +0000\r\n"
        "MIME-Version: 1.0\r\n"
    )
    text = (PARAGRAPH * rng.randint(2, 30)).replace("\n", "\r\n")
    shape = rng.random()
    if shape < 0.55:
        body = "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text
        return (header + body).encode()
    html = "<html><body><p>" + text.replace("\r\n", "</p><p>") + "</p></body></html>\r\n"
    alternative = (
        "--alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + text
        + "--alt\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" + html + "--alt--\r\n"
    )  # fmt: skip
    if shape < 0.85:
        return (header + 'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n').encode() + (
            alternative.encode()
        )
    return (
        header.encode()
        + b'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
        + b'--mix\r\nContent-Type: multipart/alternative; boundary="alt"\r\n\r\n'
        + alternative.encode()
        + b"--mix\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; "
        + b'filename="quote.pdf"\r\n\r\n'
        + PDF
        + b"--mix--\r\n"
    )


def _fill(count: int, seed: int) -> Callable[[DovecotServer], None]:
    def fill(server: DovecotServer) -> None:
        rng = random.Random(seed)
        start = 1_650_000_000
        for folder in ("INBOX", "Sent"):
            for sub in ("cur", "new", "tmp"):
                (server.maildir(USER, folder) / sub).mkdir(parents=True, exist_ok=True)
        for n in range(count):
            folder = "Sent" if n % 5 == 4 else "INBOX"
            raw = _message(n, rng)
            stamp = start + n * 1800
            flags = "S" if rng.random() < 0.8 else ""
            path = (
                server.maildir(USER, folder)
                / "cur"
                / f"{stamp}.M{n}P1.bench,S={len(raw)}:2,{flags}"
            )
            path.write_bytes(raw)
            os.utime(path, (stamp, stamp))

    return fill


def _warm_up(server: DovecotServer) -> None:
    """Let Dovecot index and cache every message once, so no contender pays for it."""
    with server.client(USER) as client:
        for folder in ("INBOX", "Sent"):
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            for start in range(0, len(uids), 2000):
                client.fetch(uids[start : start + 2000], ["BODYSTRUCTURE", "BODY.PEEK[]"])


def sync_crm(server: DovecotServer, workdir: Path) -> int:
    """``crm-sync sync``: the CLI, the IMAP connector and the whole pipeline into SQLite,
    planning in worker processes (one per CPU, the default)."""
    return _crm(server, workdir, planning_processes=None)


def sync_crm_one_process(server: DovecotServer, workdir: Path) -> int:
    """``crm-sync sync`` planning in the syncing process itself (``planning_processes = 0``)."""
    return _crm(server, workdir, planning_processes=0)


def _crm(server: DovecotServer, workdir: Path, *, planning_processes: int | None) -> int:
    database = workdir / "crm-sync.db"
    config = workdir / "crm-sync.toml"
    processes = "" if planning_processes is None else f"planning_processes = {planning_processes}\n"
    config.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n\n'
        f'[agent]\ninternal_domains = ["example.com"]\n{processes}\n'
        f'[[connectors]]\nname = "bench"\nkind = "imap"\naccount = "{USER.login}"\n'
        f'host = "{server.host}"\nport = {server.port}\nsecurity = "plain"\n'
        'password = "${BENCH_IMAP_PASSWORD}"\n'
    )
    for command in (["db", "upgrade"], ["sync"]):
        subprocess.run(
            [sys.executable, "-m", "agent", "--config", str(config), *command],
            check=True,
            env={**os.environ, "BENCH_IMAP_PASSWORD": USER.password},
            stdout=subprocess.DEVNULL,
        )
    with sqlite3.connect(database) as connection:
        (counters,) = connection.execute(
            "SELECT counters FROM sync_state WHERE connector = 'bench'"
        ).fetchone()
    return int(json.loads(counters)["items"])


def sync_connector_only(server: DovecotServer, workdir: Path) -> int:
    """The IMAP connector alone: what fetching costs without parsing and logging."""
    connector = ImapConnector(
        "bench", host=server.host, port=server.port, username=USER.login,
        password=USER.password, security="plain",
    )  # fmt: skip
    return sum(
        isinstance(item, MailMessage) for batch in connector.fetch(None) for item in batch.items
    )


def sync_mbsync(server: DovecotServer, workdir: Path) -> int:
    return _mbsync(server, workdir, fsync=True)


def sync_mbsync_no_fsync(server: DovecotServer, workdir: Path) -> int:
    """mbsync without its default fsync per message: the stricter baseline."""
    return _mbsync(server, workdir, fsync=False)


def _mbsync(server: DovecotServer, workdir: Path, *, fsync: bool) -> int:
    local = workdir / "mbsync"
    local.mkdir()
    config = workdir / "mbsyncrc"
    config.write_text(
        f"FSync {'yes' if fsync else 'no'}\n\n"
        f"IMAPAccount bench\nHost {server.host}\nPort {server.port}\nUser {USER.login}\n"
        f"Pass {USER.password}\nSSLType None\nAuthMechs LOGIN\n\n"
        "IMAPStore remote\nAccount bench\n\n"
        f"MaildirStore local\nPath {local}/\nInbox {local}/INBOX\nSubFolders Verbatim\n\n"
        "Channel bench\nFar :remote:\nNear :local:\nPatterns INBOX Sent\nCreate Near\n"
        "Sync Pull\nSyncState *\n"
    )
    subprocess.run(
        ["mbsync", "-q", "-c", str(config), "bench"], check=True, stderr=subprocess.DEVNULL
    )
    return _count_maildir(local)


def sync_offlineimap(server: DovecotServer, workdir: Path) -> int:
    local = workdir / "offlineimap"
    config = workdir / "offlineimaprc"
    config.write_text(
        f"[general]\naccounts = bench\nmetadata = {workdir}/offlineimap-meta\n\n"
        "[Account bench]\nlocalrepository = local\nremoterepository = remote\n\n"
        f"[Repository local]\ntype = Maildir\nlocalfolders = {local}\n\n"
        f"[Repository remote]\ntype = IMAP\nremotehost = {server.host}\n"
        f"remoteport = {server.port}\nremoteuser = {USER.login}\nremotepass = {USER.password}\n"
        "ssl = no\nstarttls = no\nreadonly = True\n"
        "folderfilter = lambda folder: folder in ['INBOX', 'Sent']\n"
    )
    subprocess.run(
        ["offlineimap", "-c", str(config), "-o", "-u", "quiet"],
        check=True,
        stdin=subprocess.DEVNULL,
    )
    return _count_maildir(local)


def _count_maildir(root: Path) -> int:
    return sum(
        1 for path in root.rglob("*") if path.is_file() and path.parent.name in {"cur", "new"}
    )


def _timed(run: Callable[[DovecotServer, Path], int], server: DovecotServer) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="imap-bench-") as workdir:
        started = time.perf_counter()
        count = run(server, Path(workdir))
        return time.perf_counter() - started, count


def _emit(bench: str, value: float, unit: str) -> None:
    print(json.dumps({"bench": bench, "value": round(value, 3), "unit": unit}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="rounds; each round runs every contender once, in turn; medians are kept",
    )  # fmt: skip
    parser.add_argument(
        "--offlineimap-rounds", type=int, default=1,
        help="rounds offlineimap takes part in (it is 20x slower than the rest)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args()
    missing = [tool for tool in ("mbsync", "offlineimap") if not shutil.which(tool)]
    if missing:
        print(f"missing {', '.join(missing)}: apt-get install isync offlineimap3", file=sys.stderr)
        return 2

    contenders = {
        "crm_sync": sync_crm,
        "crm_sync_one_process": sync_crm_one_process,
        "crm_sync_connector_only": sync_connector_only,
        "mbsync": sync_mbsync,
        "mbsync_no_fsync": sync_mbsync_no_fsync,
        "offlineimap": sync_offlineimap,
    }
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    with running_dovecot([USER], before_start=_fill(args.messages, args.seed)) as server:
        _warm_up(server)
        _emit("imap_first_sync.messages", args.messages, "messages")
        for round_ in range(args.repeat):
            for name, run in contenders.items():
                if name == "offlineimap" and round_ >= args.offlineimap_rounds:
                    continue
                elapsed, count = _timed(run, server)
                if count != args.messages:
                    print(f"{name} synced {count} messages, not {args.messages}", file=sys.stderr)
                    return 1
                runs[name].append(elapsed)
                print(f"round {round_ + 1}: {name} {elapsed:.2f} s", file=sys.stderr, flush=True)
    seconds = {name: statistics.median(times) for name, times in runs.items() if times}
    for name, value in seconds.items():
        _emit(f"imap_first_sync.{name}", value, "s")
        _emit(f"imap_first_sync.{name}.rate", args.messages / value, "messages/s")
    _emit("imap_first_sync.crm_sync_over_mbsync", seconds["crm_sync"] / seconds["mbsync"], "x")
    _emit(
        "imap_first_sync.crm_sync_over_mbsync_no_fsync",
        seconds["crm_sync"] / seconds["mbsync_no_fsync"],
        "x",
    )
    _emit(
        "imap_first_sync.offlineimap_over_crm_sync",
        seconds["offlineimap"] / seconds["crm_sync"],
        "x",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
