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
from tests.support.mailgen.presets import BENCH_ATTACHMENT_BYTES, DEMO_SEED


def _byte_range(text: str) -> tuple[int, int]:
    """``N`` or ``LOW-HIGH``: an attachment's raw size in bytes, exact or drawn from a range."""
    low, _, high = text.partition("-")
    try:
        sizes = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size or a range of sizes: {text!r}") from None
    if not 0 < sizes[0] <= sizes[1]:
        raise argparse.ArgumentTypeError(f"not a size or a range of sizes: {text!r}")
    return sizes


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
    bench.add_argument(
        "--attachment-bytes",
        type=_byte_range,
        default=BENCH_ATTACHMENT_BYTES,
        metavar="N|LOW-HIGH",
        help="raw size of each attachment (default %(default)s)",
    )
    bench.add_argument(
        "--attachment-share",
        type=float,
        default=1.0,
        metavar="P",
        help="keep this share of the planned attachments (default 1: all, ~8%% of messages)",
    )
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
                attachment_bytes=args.attachment_bytes,
                attachment_share=args.attachment_share,
            )
            count = write_mbox(args.out, stream)
        except ValueError as error:
            parser.error(str(error))
        size = args.out.stat().st_size
        summary = f"wrote {count:,} messages, {size:,} bytes, to {args.out}"
    print(f"{summary} in {time.perf_counter() - started:.1f}s")
    return 0
