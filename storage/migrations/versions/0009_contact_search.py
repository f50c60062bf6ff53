"""PostgreSQL: one searchable row per contact, kept in step by triggers.

A search for part of a name, an address, a company or a domain ranks the
people found by when the team was last in touch. Over the tables as they
are, PostgreSQL found the matches in four trigram indexes, then fetched
every match's contact again to rank it: 4.4 ms per search on average over
the benchmark's terms at 100,000 contacts, 21 ms for the broadest (a
company word matching thousands of people), more than the whole rest of a
request. ``contact_search`` holds, per contact, the lower-cased name, a
text of the name, addresses, company name and company domains one per line
(a query never holds a line break, so no match spans two of them), and the
time of the last contact: one trigram index finds the matches, and they are
ranked from the same rows (1.7 ms on average, 3 ms for the broadest).

Statement-level triggers with transition tables keep it current in the
writer's transaction, one statement per batch however many rows it
touches, writing rows in contact id order as the writers lock contacts.
The agent's frequent ``last_contacted_at`` updates copy that one column
into rows whose indexed columns do not change. A deleted contact's
row goes by cascade; an erasure vacuums the table with the others
(``storage.erase.ERASURE_TABLES``). The two trigram indexes this replaces,
on contact names and addresses, are dropped. SQLite keeps its FTS5 tables.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

REFRESH = r"""
CREATE FUNCTION contact_search_refresh(ids integer[]) RETURNS void LANGUAGE sql AS $$
    INSERT INTO contact_search (contact_id, name, words, last_contacted_at)
    SELECT c.id,
           lower(coalesce(c.display_name, '')),
           lower(concat_ws(E'\n',
               c.display_name,
               (SELECT string_agg(e.email, E'\n' ORDER BY e.id)
                  FROM contact_emails e WHERE e.contact_id = c.id),
               co.name,
               (SELECT string_agg(d.domain, E'\n' ORDER BY d.id)
                  FROM company_domains d WHERE d.company_id = c.company_id))),
           c.last_contacted_at
      FROM contacts c LEFT JOIN companies co ON co.id = c.company_id
     WHERE c.id = ANY(ids)
     ORDER BY c.id
    ON CONFLICT (contact_id) DO UPDATE
       SET name = excluded.name, words = excluded.words,
           last_contacted_at = excluded.last_contacted_at
$$
"""

TRIGGERS: dict[str, tuple[str, str, str]] = {
    # name: (table and event, transition tables, body)
    "contact_search_contacts_ins": (
        "INSERT ON contacts",
        "NEW TABLE AS new_rows",
        "PERFORM contact_search_refresh(ARRAY(SELECT id FROM new_rows));",
    ),
    "contact_search_contacts_upd": (
        "UPDATE ON contacts",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
                WHERE n.display_name IS DISTINCT FROM o.display_name
                   OR n.company_id IS DISTINCT FROM o.company_id));
           UPDATE contact_search s SET last_contacted_at = n.last_contacted_at
             FROM new_rows n JOIN old_rows o ON o.id = n.id
            WHERE s.contact_id = n.id
              AND n.last_contacted_at IS DISTINCT FROM o.last_contacted_at;""",
    ),
    "contact_search_emails_ins": (
        "INSERT ON contact_emails",
        "NEW TABLE AS new_rows",
        "PERFORM contact_search_refresh(ARRAY(SELECT DISTINCT contact_id FROM new_rows));",
    ),
    "contact_search_emails_upd": (
        "UPDATE ON contact_emails",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT contact_id FROM new_rows UNION SELECT contact_id FROM old_rows));""",
    ),
    "contact_search_emails_del": (
        "DELETE ON contact_emails",
        "OLD TABLE AS old_rows",
        "PERFORM contact_search_refresh(ARRAY(SELECT DISTINCT contact_id FROM old_rows));",
    ),
    "contact_search_companies_upd": (
        "UPDATE ON companies",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT c.id FROM contacts c
                 JOIN new_rows n ON n.id = c.company_id JOIN old_rows o ON o.id = n.id
                WHERE n.name IS DISTINCT FROM o.name));""",
    ),
    "contact_search_domains_ins": (
        "INSERT ON company_domains",
        "NEW TABLE AS new_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT id FROM contacts WHERE company_id IN (SELECT company_id FROM new_rows)));""",
    ),
    "contact_search_domains_upd": (
        "UPDATE ON company_domains",
        "OLD TABLE AS old_rows NEW TABLE AS new_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT id FROM contacts WHERE company_id IN (
                   SELECT company_id FROM new_rows UNION SELECT company_id FROM old_rows)));""",
    ),
    "contact_search_domains_del": (
        "DELETE ON company_domains",
        "OLD TABLE AS old_rows",
        """PERFORM contact_search_refresh(ARRAY(
               SELECT id FROM contacts WHERE company_id IN (SELECT company_id FROM old_rows)));""",
    ),
}

REPLACED = (("contacts", "display_name"), ("contact_emails", "email"))


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE contact_search ("
        " contact_id INTEGER PRIMARY KEY REFERENCES contacts (id) ON DELETE CASCADE,"
        " name TEXT NOT NULL,"
        " words TEXT NOT NULL,"
        " last_contacted_at TIMESTAMP WITH TIME ZONE)"
    )
    op.execute(REFRESH)
    for name, (event, transitions, body) in TRIGGERS.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body} RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} AFTER {event} REFERENCING {transitions} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    op.execute("SELECT contact_search_refresh(ARRAY(SELECT id FROM contacts))")
    op.execute(
        "CREATE INDEX ix_contact_search_words ON contact_search USING gin (words gin_trgm_ops)"
    )
    op.execute("CREATE INDEX ix_contact_search_name ON contact_search (name text_pattern_ops)")
    for table, column in REPLACED:
        op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    op.execute("ANALYZE contact_search")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for table, column in REPLACED:
        op.execute(
            f"CREATE INDEX IF NOT EXISTS ix_{table}_{column}_trgm ON {table} "
            f"USING gin (lower({column}) gin_trgm_ops)"
        )
    for name, (event, _, _) in TRIGGERS.items():
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {event.split(' ON ')[1]}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.execute("DROP FUNCTION IF EXISTS contact_search_refresh(integer[])")
    op.execute("DROP TABLE IF EXISTS contact_search")
