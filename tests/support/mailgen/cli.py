"""The generator's command line: ``demo OUTDIR`` or ``bench OUT.mbox``.

Run as ``python -m tests.support.mailgen``: the demo data's README gives
that command, and ``bench/ingest.py`` runs ``bench`` in a child process.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from tests.support.mailgen.demo import write_demo
from tests.support.mailgen.mailboxes import iter_messages
from tests.support.mailgen.mbox import write_mbox
from tests.support.mailgen.people import PRIYA
from tests.support.mailgen.presets import DEMO_SEED


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.mailgen",
        description="Generate the demo data set or a benchmark mailbox (seeded, reproducible).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="three staff mailboxes and a calendar")
    demo.add_argument("outdir", type=Path)
    bench = commands.add_parser("bench", help="one big mbox for the ingest benchmark")
    bench.add_argument("out", type=Path)
    bench.add_argument("--messages", type=int, default=20_000)
    bench.add_argument("--contacts", type=int, default=2_000)
    bench.add_argument("--seed", type=int, default=DEMO_SEED)
    bench.add_argument("--mailbox", default=PRIYA, help=f"a staff address (default {PRIYA})")
    bench.add_argument("--days", type=int, default=365)
    bench.add_argument("--takeout", action="store_true", help="add X-GM-THRID, X-Gmail-Labels")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    if args.command == "demo":
        paths = write_demo(args.outdir)
        size = sum(p.stat().st_size for p in paths)
        summary = f"wrote {len(paths)} files, {size:,} bytes, to {args.outdir}"
    else:
        try:
            stream = iter_messages(
                args.seed,
                args.messages,
                args.contacts,
                mailbox=args.mailbox,
                takeout=args.takeout,
                days=args.days,
            )
            count = write_mbox(args.out, stream)
        except ValueError as error:
            parser.error(str(error))
        size = args.out.stat().st_size
        summary = f"wrote {count:,} messages, {size:,} bytes, to {args.out}"
    print(f"{summary} in {time.perf_counter() - started:.1f}s")
    return 0
