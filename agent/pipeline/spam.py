"""Spam and junk: verdicts read from what mail servers and the user already decided.

Outside Gmail nothing labels spam, so without this a spoofed bank, a phishing
mail or a bulk run from an unknown sender would each be logged as an inbound
interaction, and with ``auto_create_contacts = "sent_and_received"`` make
contacts and companies of every name in it. The agent does not judge content
itself: it reads the verdicts a server wrote when the mail arrived, and
RFC 8601's ``Authentication-Results``. All functions here are pure functions
of the headers and labels (``agent.pipeline.filters`` registers the steps).

A customer's real mail must never be dropped on a weak signal, so only strong
signals skip a message; weak ones let it be logged but create no contact or
company from it (``agent.pipeline.people``).

Strong signals (the message is skipped, for this reason):

- ``spam_folder``: the IMAP keyword ``$Junk``; a label naming a junk folder in
  one of many languages.
- ``spam_flagged``: ``X-Spam-Flag: YES``, ``X-Spam-Status: Yes``, ``X-Spam:
  Yes`` (rspamd); a score at or above ``spam_score_threshold`` (``X-Spam-Status``
  ``score=``, else a decimal ``X-Spam-Score``, else the stars of
  ``X-Spam-Level``) unless the server itself said ``No``; Microsoft's spam
  confidence level 5 or more (``X-MS-Exchange-Organization-SCL``, ``SCL:`` of
  ``X-Forefront-Antispam-Report``) or its ``SFV:SPM``.
- ``auth_failed``: DMARC ``fail`` for the From domain under a published policy
  other than ``none``; SPF and DKIM both ``fail`` with nothing passing.

Weak signals (logged, no contact made; counted ``weak_spam_signal``):

- ``suspect_score``: a score from ``suspect_score_threshold`` up, below the spam
  threshold or above it when the server's verdict said ``No``.
- ``suspect_sender``: DMARC ``fail`` under policy ``none``; SPF ``fail`` or
  ``softfail``, or DKIM ``fail``, with nothing passing.

What is trusted. Any header can be written by the sender, but forging a
verdict against oneself only hides one's own mail; what matters is not to
act on a verdict about someone else. So only the topmost
``Authentication-Results`` header is read (the envelope keeps the first of
each header): receiving servers add theirs on
top (RFC 8601 section 5), and the receiving server's ``authserv-id`` cannot
be known in general. A DMARC failure counts only for the From domain itself;
an ``arc=pass`` (a forwarder vouching for the original), a DMARC pass or a
DKIM pass signed by the From domain cancels every authentication signal; mail
the user sent (from the user, in a sent folder) or marked ``$NotJunk`` is
never judged.
Every value read is cut to a bound first: a header of a megabyte costs what
one of a few kilobytes does.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from connectors.maildir import role_of

__all__ = [
    "MAX_AUTH_RESULTS",
    "MAX_AUTH_RESULTS_CHARS",
    "MAX_VERDICT_CHARS",
    "AuthResult",
    "Signal",
    "SpamPolicy",
    "failed_authentication",
    "judged",
    "junk_label",
    "parse_authentication_results",
    "server_verdict",
    "spam_score",
    "weak_signal",
]

MAX_VERDICT_CHARS = 512
"""Of each verdict header (``X-Spam-*``, the SCL headers): the verdict and score lead."""
MAX_AUTH_RESULTS_CHARS = 4096
"""Of ``Authentication-Results``: real ones, with ARC and a dozen results, are under 2 KB."""
MAX_AUTH_RESULTS = 32
"""Results (``method=result`` clauses) read from one ``Authentication-Results`` header."""
_MAX_COMMENT_DEPTH = 8
_MAX_FIELDS = 64
"""``;``-separated fields of ``X-Forefront-Antispam-Report`` read."""
_MAX_STARS = 100


@dataclass(frozen=True)
class SpamPolicy:
    """The ``[filters]`` settings: each signal can be turned off; the thresholds are the
    score at which a server's scoring means spam, and the lower one from which it makes
    the sender suspect (logged, but no contact is created)."""

    spam_headers: bool = True
    spam_score_threshold: float = 5.0
    suspect_score_threshold: float = 3.0
    sender_authentication: bool = True
    junk_folders: bool = True


@dataclass(frozen=True)
class Signal:
    """A reason (stable snake_case, ``crm-sync status --skipped``) and what showed it."""

    reason: str
    detail: str


# --- labels -----------------------------------------------------------------------------

_JUNK_KEYWORDS = frozenset({"$junk"})
_NOT_JUNK_KEYWORDS = frozenset({"$notjunk", "notjunk", "nonjunk"})
_SENT_LABELS = frozenset({"\\sent", "sent"})


def judged(labels: Collection[str], outbound: bool = False) -> bool:
    """Whether spam rules apply at all: not to mail the user sent (from the user, in a sent
    folder), nor to mail the user marked not junk (``$NotJunk``, Thunderbird's
    ``NonJunk``): the user's word overrides any server's. A sent label alone does not
    exempt a message from a stranger: Takeout's ``X-Gmail-Labels`` header, which anyone
    can write, becomes labels too."""
    keys = {label.strip().lower() for label in labels}
    return not ((outbound and keys & _SENT_LABELS) or keys & _NOT_JUNK_KEYWORDS)


def junk_label(labels: Collection[str]) -> str | None:
    """The first label that marks junk: the ``$Junk`` keyword (RFC 5788's registry) or the
    name of a junk folder, in any of the languages ``connectors.maildir`` knows."""
    for label in sorted(labels):
        if label.strip().lower() in _JUNK_KEYWORDS or role_of(label.strip()) == "junk":
            return label
    return None


# --- server verdicts --------------------------------------------------------------------

_LEADING_WORD = re.compile(r"\s*([A-Za-z]+)")
_SCORE = re.compile(r"\b(?:score|hits)=\s*([-+]?\d{1,6}(?:\.\d{1,6})?)", re.IGNORECASE)
_DECIMAL = re.compile(r"\s*([-+]?\d{1,6}\.\d{1,6})(?![\d.])")
_SCL = re.compile(r"\s*(-?\d{1,2})\s*$")


def _value(headers: Mapping[str, str], name: str, bound: int = MAX_VERDICT_CHARS) -> str:
    return headers.get(name, "")[:bound]


def _says(headers: Mapping[str, str], name: str) -> str | None:
    """``yes`` or ``no``, as the first word of a verdict header says it; None otherwise."""
    match = _LEADING_WORD.match(_value(headers, name))
    word = match.group(1).lower() if match else ""
    return word if word in ("yes", "no") else None


def spam_score(headers: Mapping[str, str]) -> float | None:
    """The score a server gave: ``X-Spam-Status``'s ``score=`` (SpamAssassin's own record,
    with the threshold next to it), else ``X-Spam-Score`` when it has decimals, else the
    stars of ``X-Spam-Level`` (one a point). A whole number in ``X-Spam-Score`` is not
    read: Exim setups write ``$spam_score_int`` there, ten times the score, and a
    customer's 1.2 must not read as 12."""
    status = _SCORE.search(_value(headers, "x-spam-status"))
    if status:
        return float(status.group(1))
    plain = _DECIMAL.match(_value(headers, "x-spam-score"))
    if plain:
        return float(plain.group(1))
    level = _value(headers, "x-spam-level").strip()
    if level and set(level) == {"*"}:
        return float(min(len(level), _MAX_STARS))
    return None


def _microsoft(headers: Mapping[str, str]) -> str | None:
    """SCL 5 to 9 is spam as Microsoft documents it (-1 is a trusted sender, 0 and 1
    clean); ``SFV:SPM`` is its filter's spam verdict."""
    scl = _SCL.match(_value(headers, "x-ms-exchange-organization-scl"))
    if scl and int(scl.group(1)) >= 5:
        return f"X-MS-Exchange-Organization-SCL: {scl.group(1)}"
    report = _value(headers, "x-forefront-antispam-report")
    for field in report.split(";", _MAX_FIELDS)[:_MAX_FIELDS]:
        key, _, value = field.strip().partition(":")
        key, value = key.strip().upper(), value.strip().upper()
        if key == "SCL" and re.fullmatch(r"-?\d{1,2}", value) and int(value) >= 5:
            return f"X-Forefront-Antispam-Report SCL:{value}"
        if key == "SFV" and value == "SPM":
            return "X-Forefront-Antispam-Report SFV:SPM"
    return None


def server_verdict(headers: Mapping[str, str], policy: SpamPolicy) -> Signal | None:
    """``spam_flagged`` when a server said spam, or scored the message at or above
    ``spam_score_threshold`` without itself saying it is not."""
    for name in ("x-spam-flag", "x-spam-status", "x-spam"):
        if _says(headers, name) == "yes":
            return Signal("spam_flagged", f"{name}: {_value(headers, name)[:80]}")
    microsoft = _microsoft(headers)
    if microsoft:
        return Signal("spam_flagged", microsoft)
    score = spam_score(headers)
    said_no = "no" in (_says(headers, "x-spam-flag"), _says(headers, "x-spam-status"))
    if score is not None and score >= policy.spam_score_threshold and not said_no:
        return Signal("spam_flagged", f"spam score {score:g} >= {policy.spam_score_threshold:g}")
    return None


# --- Authentication-Results (RFC 8601) --------------------------------------------------


@dataclass(frozen=True)
class AuthResult:
    """One ``method=result`` clause: lower-cased, its properties (``header.from``,
    ``smtp.mailfrom``, ``policy.published-domain-policy``, Microsoft's ``action``) and the
    text of its comments (where OpenDMARC and Gmail write ``p=reject``)."""

    method: str
    result: str
    properties: Mapping[str, str]
    comment: str = ""


def _split(text: str) -> list[tuple[str, str]]:
    """``text`` cut at the semicolons outside quotes and comments, each piece as (text
    without comments, text of its comments). Comments nest (RFC 5322); deeper than a few
    levels is taken as text, and an unclosed one ends at the end."""
    pieces: list[tuple[str, str]] = []
    plain: list[str] = []
    comment: list[str] = []
    depth, quoted, escaped = 0, False, False
    for char in text:
        if escaped:
            (comment if depth else plain).append(char)
            escaped = False
        elif char == "\\" and (quoted or depth):
            escaped = True
        elif char == '"' and not depth:
            quoted = not quoted
        elif char == "(" and not quoted and depth < _MAX_COMMENT_DEPTH:
            depth += 1
            comment.append(" ")
        elif char == ")" and depth:
            depth -= 1
        elif char == ";" and not (quoted or depth):
            pieces.append(("".join(plain), "".join(comment)))
            plain, comment = [], []
        else:
            (comment if depth else plain).append(char)
    pieces.append(("".join(plain), "".join(comment)))
    return pieces


def _clause(plain: str, comment: str) -> AuthResult | None:
    tokens = re.sub(r"\s*=\s*", "=", plain.strip()).split()
    if not tokens or "=" not in tokens[0]:
        return None
    method, _, result = tokens[0].partition("=")
    properties: dict[str, str] = {}
    for token in tokens[1:]:
        key, equals, value = token.partition("=")
        if equals and key and value:
            properties.setdefault(key.lower(), value.lower())
    return AuthResult(method.split("/")[0].lower(), result.lower(), properties, comment.lower())


def parse_authentication_results(value: str) -> tuple[str, tuple[AuthResult, ...]]:
    """The ``authserv-id`` and the results of one header value; ``("", ())`` for nothing
    usable. At most ``MAX_AUTH_RESULTS`` results of the first ``MAX_AUTH_RESULTS_CHARS``."""
    pieces = _split(value[:MAX_AUTH_RESULTS_CHARS])
    head = pieces[0][0].split()
    if not head:
        return "", ()
    results = (_clause(plain, comment) for plain, comment in pieces[1 : MAX_AUTH_RESULTS + 1])
    return head[0].lower(), tuple(result for result in results if result is not None)


def _domain(value: str) -> str:
    """The domain of ``header.from``, ``header.d``, ``smtp.mailfrom`` (an address or a
    domain), without a trailing dot."""
    return value.rpartition("@")[2].strip().strip(".").lower()


def _same_site(domain: str, from_domain: str) -> bool:
    """``domain`` is the From domain or one of its parents or children (DMARC's relaxed
    alignment without the public-suffix list: a parent as short as a TLD never matches)."""
    if not domain or not from_domain:
        return False
    if domain == from_domain:
        return True
    longer, shorter = sorted((domain, from_domain), key=len, reverse=True)
    return "." in shorter and longer.endswith("." + shorter)


_DMARC_POLICY = re.compile(r"\bp=\s*(none|quarantine|reject)\b")


def _dmarc_policy(result: AuthResult) -> str | None:
    """The published policy where the server says it: RFC 8601's registered property,
    OpenDMARC's and Gmail's comment ``(p=reject dis=none)``, Microsoft's ``action``."""
    published = result.properties.get("policy.published-domain-policy")
    if published:
        return published
    in_comment = _DMARC_POLICY.search(result.comment)
    if in_comment:
        return in_comment.group(1)
    return "none" if result.properties.get("action") == "none" else None


def _topmost(headers: Mapping[str, str]) -> tuple[AuthResult, ...]:
    return parse_authentication_results(headers.get("authentication-results", ""))[1]


def _vouched(results: tuple[AuthResult, ...], from_domain: str) -> bool:
    """Someone accountable for the From domain signed for the message: a DMARC pass, a
    DKIM pass of a signature of that domain (anyone can sign with their own), or an ARC
    pass (a forwarder vouching for what the message was before it changed it)."""
    for result in results:
        if result.result != "pass":
            continue
        if result.method == "arc":
            return True
        if result.method == "dmarc":
            said = _domain(result.properties.get("header.from", ""))
            if not said or _same_site(said, from_domain):
                return True
        signer = result.properties.get("header.d") or result.properties.get("header.i", "")
        if result.method == "dkim" and _same_site(_domain(signer), from_domain):
            return True
    return False


def _dmarc_failure(results: tuple[AuthResult, ...], from_domain: str) -> AuthResult | None:
    for result in results:
        if (
            result.method == "dmarc"
            and result.result == "fail"
            and _same_site(_domain(result.properties.get("header.from", "")), from_domain)
        ):
            return result
    return None


def _results_of(results: tuple[AuthResult, ...], method: str) -> set[str]:
    return {result.result for result in results if result.method == method}


def failed_authentication(headers: Mapping[str, str], from_domain: str) -> Signal | None:
    """``auth_failed``: the From domain's DMARC failed under a policy other than ``none``
    (an unknown policy counts: the server wrote ``fail``), or SPF and DKIM both failed and
    nothing passed."""
    results = _topmost(headers)
    if not results or _vouched(results, from_domain):
        return None
    dmarc = _dmarc_failure(results, from_domain)
    if dmarc is not None and _dmarc_policy(dmarc) != "none":
        policy = _dmarc_policy(dmarc) or "not stated"
        return Signal("auth_failed", f"DMARC fail for {from_domain} (policy {policy})")
    if "fail" in _results_of(results, "spf") and "fail" in _results_of(results, "dkim"):
        return Signal("auth_failed", "SPF fail and DKIM fail")
    return None


def _suspect_sender(headers: Mapping[str, str], from_domain: str) -> Signal | None:
    results = _topmost(headers)
    if not results or _vouched(results, from_domain):
        return None
    if _dmarc_failure(results, from_domain) is not None:
        return Signal("suspect_sender", f"DMARC fail for {from_domain} (policy none)")
    spf = _results_of(results, "spf") & {"fail", "softfail"}
    if spf:
        return Signal("suspect_sender", f"SPF {sorted(spf)[0]}")
    if "fail" in _results_of(results, "dkim"):
        return Signal("suspect_sender", "DKIM fail")
    return None


def _suspect_score(headers: Mapping[str, str], policy: SpamPolicy) -> Signal | None:
    score = spam_score(headers)
    if score is None or score < policy.suspect_score_threshold:
        return None
    return Signal("suspect_score", f"spam score {score:g} >= {policy.suspect_score_threshold:g}")


def weak_signal(
    headers: Mapping[str, str],
    labels: Collection[str],
    from_domain: str,
    policy: SpamPolicy,
    outbound: bool = False,
) -> Signal | None:
    """A signal too weak to skip a message for, strong enough not to make contacts of its
    people: a spam score from ``suspect_score_threshold`` (or one the server itself called
    not spam), or a sender whose authentication failed in part (see the module table)."""
    if not judged(labels, outbound):
        return None
    if policy.spam_headers:
        suspect = _suspect_score(headers, policy)
        if suspect is not None:
            return suspect
    if policy.sender_authentication:
        return _suspect_sender(headers, from_domain)
    return None
