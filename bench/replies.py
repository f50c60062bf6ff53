"""How well reply extraction generalises: scores per split and language on real client mail.

The corpus is ``tests/fixtures/replies/`` (see its ATTRIBUTION.md): a
``tuned`` split the rules were written against and a ``held_out`` split from
another source that they were not, so the gap between the two is the
measure of over-fitting. For each case ``reply_text`` runs on the message
body and is compared with the expected reply (both stripped of surrounding
whitespace).

Scores, each a share of cases in [0, 1]:

- ``exact``: the extracted text equals the expected text.
- ``soft``: the texts match once whitespace is normalised (runs of spaces
  and line breaks become one space) and are at least 0.9 similar by
  ``difflib.SequenceMatcher.ratio``: a stray blank line or a kept trailing
  space does not count as a miss, a kept quote or a lost paragraph does.
- ``token_f1``: the mean token F1 between the two texts (tokens are
  whitespace-separated words, counted as multisets); partial credit that
  shows how much was kept or lost when a case misses. Two empty texts
  score 1.

One JSON line per (split, language) and one per split with ``"language":
"all"``, then the misses on stderr. ``--split`` limits the run to one split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from difflib import SequenceMatcher
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.mail.replies import reply_text  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "replies"
SPLITS = ("tuned", "held_out")
SOFT_MIN_RATIO = 0.9
"""Normalised texts at least this similar count as a soft match."""


def load_split(split: str) -> list[dict[str, Any]]:
    """The cases of one split: name, language, message body and expected reply."""
    folder = CORPUS / split
    expected: dict[str, dict[str, str]] = json.loads((folder / "expected.json").read_text("utf-8"))
    return [
        {
            "name": name,
            "language": case["language"],
            "body": (folder / f"{name}.txt").read_text("utf-8"),
            "reply": case["reply"],
        }
        for name, case in sorted(expected.items())
    ]


def _normalised(text: str) -> str:
    return " ".join(text.split())


def soft_match(got: str, want: str) -> bool:
    """Whitespace-normalised similarity of at least ``SOFT_MIN_RATIO``."""
    a, b = _normalised(got), _normalised(want)
    if a == b:
        return True
    return SequenceMatcher(None, a, b, autojunk=False).ratio() >= SOFT_MIN_RATIO


def token_f1(got: str, want: str) -> float:
    """F1 of the multisets of whitespace-separated tokens."""
    a, b = Counter(got.split()), Counter(want.split())
    if not a and not b:
        return 1.0
    common = sum((a & b).values())
    if common == 0:
        return 0.0
    precision, recall = common / sum(a.values()), common / sum(b.values())
    return 2 * precision * recall / (precision + recall)


def score(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each case with what was extracted and its three scores."""
    results = []
    for case in cases:
        got = reply_text(case["body"]).strip()
        want = case["reply"].strip()
        results.append(
            {
                **case,
                "got": got,
                "exact": got == want,
                "soft": soft_match(got, want),
                "token_f1": token_f1(got, want),
            }
        )
    return results


def summary(split: str, language: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """One line of the table: the shares of exact and soft matches and the mean token F1."""
    count = len(results)
    return {
        "split": split,
        "language": language,
        "cases": count,
        "exact": round(sum(r["exact"] for r in results) / count, 3),
        "soft": round(sum(r["soft"] for r in results) / count, 3),
        "token_f1": round(sum(r["token_f1"] for r in results) / count, 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, action="append")
    args = parser.parse_args()
    for split in args.split or SPLITS:
        started = time.perf_counter()
        results = score(load_split(split))
        elapsed = time.perf_counter() - started
        for language in sorted({r["language"] for r in results}):
            picked = [r for r in results if r["language"] == language]
            print(json.dumps(summary(split, language, picked), ensure_ascii=False))
        line = summary(split, "all", results) | {"seconds": round(elapsed, 3)}
        print(json.dumps(line, ensure_ascii=False))
        for result in results:
            if not result["exact"]:
                print(f"# {split} miss {result['name']}: {result['got']!r:.160}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
