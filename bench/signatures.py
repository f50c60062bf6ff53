"""How well signature fields are read: scores per split and field on real messages.

The corpus is ``tests/fixtures/signatures/`` (see its README.md): a ``tuned``
split the rules were written against and a ``held_out`` split chosen before
they were written, so the gap between the two is the measure of
over-fitting. For each case ``read_signature`` runs on the message text with
the case's sender and each field is compared with the expected value.

One JSON line per (split, field), with:

- ``cases``: the cases that state the field (title and phones: every case;
  company and website: those where a reader can tell).
- ``exact``: cases whose value is exactly the expected one (no value where
  none is expected counts; phones compare as sets of numbers as written).
- ``precision``, ``recall``: for title, company and website, over the cases
  where a value was read / was expected; for phones, over the numbers.
  ``null`` when there is nothing to divide by.

The misses follow on stderr. ``--split`` limits the run to one split.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from agent.mail.signature_fields import SignatureFields, read_signature  # noqa: E402

CORPUS = ROOT / "tests" / "fixtures" / "signatures"
SPLITS = ("tuned", "held_out")
FIELDS = ("title", "phones", "company", "website")


def load_split(split: str) -> list[dict[str, Any]]:
    """The cases of one split: name, text and expected values, as ``expected.json`` has them."""
    folder = CORPUS / split
    expected: dict[str, dict[str, Any]] = json.loads((folder / "expected.json").read_text("utf-8"))
    return [
        {"name": name, "text": (folder / name).read_text("utf-8"), **case}
        for name, case in sorted(expected.items())
    ]


def extracted(case: dict[str, Any]) -> dict[str, Any]:
    """The fields read from one case, in the form of ``expected.json``."""
    fields: SignatureFields = read_signature(case["text"], case["sender"])
    return {
        "title": fields.title,
        "phones": list(fields.phones),
        "company": fields.company,
        "website": fields.website,
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def field_score(field: str, pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    """``exact``, ``precision`` and ``recall`` of one field over (got, want) pairs."""
    if field == "phones":
        exact = sum(set(got) == set(want) for got, want in pairs)
        right = sum(len(set(got) & set(want)) for got, want in pairs)
        read = sum(len(set(got)) for got, _ in pairs)
        wanted = sum(len(set(want)) for _, want in pairs)
    else:
        exact = sum(got == want for got, want in pairs)
        right = sum(got is not None and got == want for got, want in pairs)
        read = sum(got is not None for got, _ in pairs)
        wanted = sum(want is not None for _, want in pairs)
    return {
        "cases": len(pairs),
        "exact": exact,
        "precision": _ratio(right, read),
        "recall": _ratio(right, wanted),
    }


def score(split: str) -> tuple[list[dict[str, Any]], list[str]]:
    """One summary per field of ``split``, and a line per miss."""
    cases = load_split(split)
    got = {case["name"]: extracted(case) for case in cases}
    lines, misses = [], []
    for field in FIELDS:
        stated = [case for case in cases if field in case]
        pairs = [(got[case["name"]][field], case[field]) for case in stated]
        lines.append({"split": split, "field": field, **field_score(field, pairs)})
        for case, (value, want) in zip(stated, pairs, strict=True):
            same = set(value) == set(want) if field == "phones" else value == want
            if not same:
                misses.append(f"# {split} {field} {case['name']}: got {value!r}, want {want!r}")
    return lines, misses


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", choices=SPLITS, action="append")
    args = parser.parse_args()
    for split in args.split or SPLITS:
        started = time.perf_counter()
        lines, misses = score(split)
        elapsed = round(time.perf_counter() - started, 3)
        for line in lines:
            print(json.dumps(line | {"seconds": elapsed}, ensure_ascii=False))
        for miss in misses:
            print(miss, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
