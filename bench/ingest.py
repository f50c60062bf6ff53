"""Ingest throughput and memory: the whole mail pipeline against a parse-only baseline.

On one generated mbox (replies, HTML, attachments; ``tests.support.mailgen``) this
times, side by side and interleaved:

* ``parse``: the stdlib alone -- ``mailbox.mbox`` plus ``email`` with
  ``policy.default`` over every message -- the least any ingester must do;
* ``pipeline``: ``MboxConnector`` -> filter -> match -> log into a fresh
  SQLite file, batches committed with their cursor, as ``crm-sync import``.

Each run is a child process, so its peak RSS is its own; it plans in its own
process, as a sync does on one CPU (planning workers would add their own). Targets: the
pipeline takes at most 2x the parse-only time, and its peak memory does not
grow with the mailbox (the large mailbox within 1.2x of the small one).

Then the memory of mail with big attachments: mailboxes of 2,000 and 20,000
messages where each generated attachment is 5 MB (about 6% of the messages
carry one, 6.7 MB on the wire; ``--attachment-share`` keeps fewer where disk is
short), through the same pipeline with the default ``[agent] batch_bytes``.
Targets: a peak RSS of at most 200 MB at 2,000 messages, and flat from 2,000
to 20,000 (within 1.2x).

Prints one JSON line per figure: ``{"bench": ..., "value": ..., "unit": ...}``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _child_parse(mbox: Path) -> dict[str, Any]:
    import mailbox
    from email import policy
    from email.parser import BytesParser

    parser = BytesParser(policy=policy.default)
    started = time.perf_counter()
    box = mailbox.mbox(str(mbox), create=False)
    count = 0
    for key in box.iterkeys():
        parser.parsebytes(box.get_bytes(key))
        count += 1
    return {"seconds": time.perf_counter() - started, "messages": count}


def _child_pipeline(mbox: Path, database: Path, batch_bytes: int | None) -> dict[str, Any]:
    from agent.pipeline.policy import Policy
    from agent.runtime.sync_pass import sync_connector
    from config import parse_settings
    from connectors.mbox import MboxConnector
    from storage.db import make_engine, session_factory, upgrade

    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    settings = parse_settings({"agent": {"internal_domains": ["northwind.example"]}}, None)
    owner = "bench@northwind.example"
    connector = MboxConnector(
        "bench", mbox, owner, batch_size=500, batch_bytes=batch_bytes or settings.agent.batch_bytes
    )
    policy = Policy.from_settings(settings, "bench", owner)
    started = time.perf_counter()
    result = sync_connector(session_factory(engine), connector, policy, kind="mbox")
    seconds = time.perf_counter() - started
    if result.status != "ok":
        raise SystemExit(f"pipeline failed: {result.error}")
    return {
        "seconds": seconds,
        "messages": result.items,
        "logged": result.logged,
        "contacts": result.contacts_created,
    }


def _run_child(
    kind: str, mbox: Path, workdir: Path, batch_bytes: int | None = None
) -> dict[str, Any]:
    database = workdir / f"bench-{time.monotonic_ns()}.db"
    command = [
        sys.executable,
        __file__,
        "--child",
        kind,
        "--mbox",
        str(mbox),
        "--db",
        str(database),
    ]
    if batch_bytes:
        command += ["--batch-bytes", str(batch_bytes)]
    completed = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise SystemExit(f"{kind} run failed:\n{completed.stderr[-3000:]}")
    for suffix in ("", "-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    return dict(json.loads(completed.stdout.strip().splitlines()[-1]))


def _generate(path: Path, messages: int, contacts: int, seed: int, *options: str) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.mailgen",
            "bench",
            str(path),
            "--messages",
            str(messages),
            "--contacts",
            str(contacts),
            "--seed",
            str(seed),
            *options,
        ],
        check=True,
        cwd=ROOT,
    )


def emit(bench: str, value: float, unit: str, **extra: Any) -> None:
    print(json.dumps({"bench": bench, "value": round(value, 3), "unit": unit, **extra}), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--small", type=int, default=5_000, help="the memory comparison's size")
    parser.add_argument("--contacts", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, interleaved")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--attachments",
        choices=["also", "no", "only"],
        default="also",
        help="the runs with big attachments: after the others (default), not, or alone",
    )
    parser.add_argument("--attachment-bytes", type=int, default=5_000_000)
    parser.add_argument(
        "--attachment-share",
        type=float,
        default=1.0,
        help="share of the generator's attachments kept in the 20,000-message mailbox",
    )
    parser.add_argument(
        "--batch-bytes", type=int, help="the batches' byte bound (default: the config's)"
    )
    parser.add_argument("--child", choices=["parse", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--mbox", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        figures = (
            _child_parse(args.mbox)
            if args.child == "parse"
            else _child_pipeline(args.mbox, args.db, args.batch_bytes)
        )
        from tests.support.peak_memory import own_peak_rss_kib

        figures["peak_rss_kib"] = own_peak_rss_kib()
        print(json.dumps(figures))
        return

    if args.attachments != "only":
        _throughput(args)
    if args.attachments != "no":
        _attachments(args)


def _throughput(args: argparse.Namespace) -> None:
    """Pipeline against parse-only time, and peak memory at two mailbox sizes."""
    with tempfile.TemporaryDirectory(prefix="crm-sync-bench-") as tmp:
        workdir = Path(tmp)
        large = workdir / f"mail-{args.messages}.mbox"
        small = workdir / f"mail-{args.small}.mbox"
        _generate(large, args.messages, args.contacts, args.seed)
        _generate(small, args.small, args.contacts, args.seed)
        emit("ingest.mbox_size", large.stat().st_size / 2**20, "MiB", messages=args.messages)

        parse_runs, pipeline_runs = [], []
        for _ in range(args.repeat):
            parse_runs.append(_run_child("parse", large, workdir))
            pipeline_runs.append(_run_child("pipeline", large, workdir))
        small_runs = [_run_child("pipeline", small, workdir) for _ in range(args.repeat)]

    parse_s = statistics.median(r["seconds"] for r in parse_runs)
    pipeline_s = statistics.median(r["seconds"] for r in pipeline_runs)
    n = pipeline_runs[0]["messages"]
    emit("ingest.parse_only.seconds", parse_s, "s", messages=parse_runs[0]["messages"])
    emit("ingest.pipeline.seconds", pipeline_s, "s", messages=n, logged=pipeline_runs[0]["logged"])
    emit("ingest.parse_only.rate", parse_runs[0]["messages"] / parse_s, "messages/s")
    emit("ingest.pipeline.rate", n / pipeline_s, "messages/s")
    emit("ingest.pipeline_vs_parse", pipeline_s / parse_s, "x", target="<= 2.0")
    large_rss = statistics.median(r["peak_rss_kib"] for r in pipeline_runs)
    small_rss = statistics.median(r["peak_rss_kib"] for r in small_runs)
    emit("ingest.pipeline.peak_rss", large_rss / 1024, "MiB", messages=args.messages)
    emit("ingest.pipeline.peak_rss_small", small_rss / 1024, "MiB", messages=args.small)
    emit(
        "ingest.memory_growth",
        large_rss / small_rss,
        "x",
        target="<= 1.2",
        sizes=f"{args.messages} vs {args.small}",
    )


ATTACHMENT_SIZES = (2_000, 20_000)


def _attachments(args: argparse.Namespace) -> None:
    """Peak memory of the pipeline over mail with big attachments, at two mailbox sizes.

    The mailboxes are generated one at a time and removed after their run:
    the large one takes several GB.
    """
    small, large = ATTACHMENT_SIZES
    rss: dict[int, float] = {}
    for messages in ATTACHMENT_SIZES:
        share = args.attachment_share if messages == large else 1.0
        with tempfile.TemporaryDirectory(prefix="crm-sync-bench-") as tmp:
            workdir = Path(tmp)
            mbox = workdir / f"attachments-{messages}.mbox"
            options = ["--attachment-bytes", str(args.attachment_bytes)]
            _generate(
                mbox, messages, args.contacts, args.seed, *options, "--attachment-share", str(share)
            )
            size = mbox.stat().st_size / 2**20
            run = _run_child("pipeline", mbox, workdir, args.batch_bytes)
        rss[messages] = run["peak_rss_kib"] * 1024 / 1e6
        emit(
            "ingest.attachments.peak_rss",
            rss[messages],
            "MB",
            messages=messages,
            mbox_mib=round(size),
            attachment_bytes=args.attachment_bytes,
            attachment_share=share,
            seconds=round(run["seconds"], 1),
            **({"target": "<= 200"} if messages == small else {}),
        )
    emit(
        "ingest.attachments.memory_growth",
        rss[large] / rss[small],
        "x",
        target="<= 1.2",
        sizes=f"{large} vs {small}",
    )


if __name__ == "__main__":
    main()
