"""The analysts' star: read-only SQL views over the contract tables, for BI tools.

One fact and four dimensions, the same names and columns on SQLite and
PostgreSQL, so that a Metabase question or a spreadsheet query written on one
works on the other:

``fact_interactions``
    one row per interaction and external participant contact (a participant
    matched to a contact whose address is not the team's own), with the day,
    the meeting's length and the teammate whose mailbox logged it.
``dim_contacts``, ``dim_companies``
    the subjects with their relationship figures (``contact_figures``,
    ``company_figures``), ``NULL`` where none were computed yet.
``dim_teammates``
    the team's addresses: users, their mailboxes and the connectors' accounts.
``dim_days``
    every date from the first shared interaction to the last (a recursive CTE,
    so nothing needs refreshing).

Views rather than tables: they are always current and cost nothing to keep.
What they leave out is what no analyst may read: private interactions (even
the days they fall on) and every text that came from a message (subject,
summary, body). On PostgreSQL a view reads with its owner's rights, so a role
granted ``SELECT`` on these views alone never reaches the tables behind them.

The few expressions that differ (a timestamp's UTC date, a difference in
minutes, the parts of a date) are the only dialect-specific text; the rest
of each view is written once. A later migration that rebuilds a table these
views read (Alembic's batch mode on SQLite renames a copy into place, which
SQLite refuses while a view names the dropped table) drops the views first
with :func:`drop_statements` and creates them again after.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.visibility import PRIVATE

VIEWS = ("fact_interactions", "dim_contacts", "dim_companies", "dim_teammates", "dim_days")


@dataclass(frozen=True)
class _Dialect:
    """The expressions that differ between the databases; ``{0}``/``{1}`` are columns."""

    day: str
    """The UTC calendar date of the timestamp ``{0}``."""
    minutes: str
    """Whole minutes from ``{0}`` to ``{1}``."""
    next_day: str
    """The date after the date ``{0}``."""
    day_parts: str
    """The select list of ``dim_days`` from the column ``day`` of the derived table ``d``,
    which also carries ``thursday`` where a dialect needs it for the ISO week."""
    thursday: str = "NULL"
    """The Thursday of the ISO week of the date ``{0}``: its year and week are the ISO ones."""


_SQLITE = _Dialect(
    day="date({0})",
    minutes="CAST(ROUND((julianday({1}) - julianday({0})) * 1440) AS INTEGER)",
    next_day="date({0}, '+1 day')",
    thursday="date({0}, (3 - (CAST(strftime('%w', {0}) AS INTEGER) + 6) % 7) || ' days')",
    day_parts="""
    d.day AS day,
    CAST(strftime('%Y', d.day) AS INTEGER) AS year,
    (CAST(strftime('%m', d.day) AS INTEGER) + 2) / 3 AS quarter,
    CAST(strftime('%m', d.day) AS INTEGER) AS month,
    CAST(strftime('%Y', d.thursday) AS INTEGER) AS iso_year,
    (CAST(strftime('%j', d.thursday) AS INTEGER) - 1) / 7 + 1 AS iso_week,
    (CAST(strftime('%w', d.day) AS INTEGER) + 6) % 7 + 1 AS weekday""",
)

_POSTGRESQL = _Dialect(
    day="CAST({0} AT TIME ZONE 'UTC' AS date)",
    minutes="CAST(ROUND(EXTRACT(EPOCH FROM {1} - {0}) / 60) AS integer)",
    next_day="CAST({0} + 1 AS date)",
    day_parts="""
    d.day AS day,
    CAST(EXTRACT(YEAR FROM d.day) AS integer) AS year,
    CAST(EXTRACT(QUARTER FROM d.day) AS integer) AS quarter,
    CAST(EXTRACT(MONTH FROM d.day) AS integer) AS month,
    CAST(EXTRACT(ISOYEAR FROM d.day) AS integer) AS iso_year,
    CAST(EXTRACT(WEEK FROM d.day) AS integer) AS iso_week,
    CAST(EXTRACT(ISODOW FROM d.day) AS integer) AS weekday""",
)

_DIALECTS = {"sqlite": _SQLITE, "postgresql": _POSTGRESQL}

_SHARED = f"visibility <> '{PRIVATE}'"

_TEAM = """
        SELECT email FROM users
        UNION SELECT account FROM user_mailboxes
        UNION SELECT account FROM sync_state WHERE account IS NOT NULL"""
"""Every address that is the team's own (as ``storage.history.team_of`` reads them)."""


def _fact_interactions(sql: _Dialect) -> str:
    """A participant row stands for its contact in an interaction when no earlier row of
    the same contact does: one row per pair, and a filter on the fact reaches the index."""
    return f"""
CREATE VIEW fact_interactions AS
SELECT
    i.id AS interaction_id,
    p.contact_id AS contact_id,
    c.company_id AS company_id,
    {sql.day.format("i.occurred_at")} AS day,
    i.occurred_at AS occurred_at,
    i.kind AS kind,
    i.direction AS direction,
    i.status AS status,
    CASE WHEN i.kind = 'meeting' AND i.ends_at IS NOT NULL
        THEN {sql.minutes.format("i.occurred_at", "i.ends_at")} END AS duration_minutes,
    COALESCE((
        SELECT st.account FROM interaction_sources s
        JOIN sync_state st ON st.connector = s.connector
        WHERE s.interaction_id = i.id AND st.account IS NOT NULL
        ORDER BY s.id LIMIT 1
    ), i.owner) AS teammate
FROM interactions i
JOIN interaction_participants p ON p.interaction_id = i.id
JOIN contacts c ON c.id = p.contact_id
WHERE i.{_SHARED}
    AND p.email NOT IN ({_TEAM})
    AND NOT EXISTS (
        SELECT 1 FROM interaction_participants q
        WHERE q.interaction_id = p.interaction_id AND q.contact_id = p.contact_id
            AND q.id < p.id AND q.email NOT IN ({_TEAM})
    )
"""


_DIM_CONTACTS = """
CREATE VIEW dim_contacts AS
SELECT
    c.id AS id,
    c.display_name AS name,
    (SELECT e.email FROM contact_emails e WHERE e.contact_id = c.id ORDER BY e.id LIMIT 1)
        AS email,
    c.title AS title,
    c.company_id AS company_id,
    c.created_at AS created_at,
    f.level AS level,
    f.strength AS strength,
    f.trend AS trend,
    f.last_at AS last_at
FROM contacts c
LEFT JOIN contact_figures f ON f.contact_id = c.id
"""

_DIM_COMPANIES = """
CREATE VIEW dim_companies AS
SELECT
    c.id AS id,
    c.name AS name,
    (SELECT d.domain FROM company_domains d WHERE d.company_id = c.id ORDER BY d.id LIMIT 1)
        AS domain,
    c.created_at AS created_at,
    f.level AS level,
    f.strength AS strength,
    f.trend AS trend,
    f.last_at AS last_at
FROM companies c
LEFT JOIN company_figures f ON f.company_id = c.id
"""

_DIM_TEAMMATES = f"""
CREATE VIEW dim_teammates AS
SELECT
    a.email AS email,
    u.id AS user_id,
    u.email AS user_email,
    u.display_name AS name,
    u.role AS role,
    (SELECT count(*) FROM sync_state s WHERE s.account = a.email) AS connectors
FROM ({_TEAM}
) a
LEFT JOIN users u ON u.id = COALESCE(
    (SELECT m.user_id FROM user_mailboxes m WHERE m.account = a.email),
    (SELECT v.id FROM users v WHERE v.email = a.email)
)
"""


def _dim_days(sql: _Dialect) -> str:
    return f"""
CREATE VIEW dim_days AS
WITH RECURSIVE bounds (first_day, last_day) AS (
    SELECT {sql.day.format("min(occurred_at)")}, {sql.day.format("max(occurred_at)")}
    FROM interactions WHERE {_SHARED}
), days (day) AS (
    SELECT first_day FROM bounds WHERE first_day IS NOT NULL
    UNION ALL
    SELECT {sql.next_day.format("days.day")} FROM days, bounds WHERE days.day < bounds.last_day
)
SELECT {sql.day_parts}
FROM (SELECT day, {sql.thursday.format("day")} AS thursday FROM days) d
"""


def create_statements(dialect: str) -> list[str]:
    """The ``CREATE VIEW`` statements for ``dialect`` (``sqlite`` or ``postgresql``)."""
    sql = _DIALECTS.get(dialect)
    if sql is None:
        raise ValueError(f"no star views for the {dialect} database")
    return [_fact_interactions(sql), _DIM_CONTACTS, _DIM_COMPANIES, _DIM_TEAMMATES, _dim_days(sql)]


def drop_statements() -> list[str]:
    """``DROP VIEW`` for each view, the same on both databases."""
    return [f"DROP VIEW IF EXISTS {name}" for name in reversed(VIEWS)]
