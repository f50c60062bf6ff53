"""Relationship figures, tags, saved segments and what each connector brought per day.

``contact_figures`` and ``company_figures`` hold what the team's history with
each contact and company adds up to (``storage.relationships`` keeps them
current with every batch); ``tags``, ``contact_tags``, ``company_tags`` and
``segments`` let people group contacts and companies; ``connector_days``
keeps the sources report's daily counts.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KINDS = ("emails_in", "emails_out", "meetings")
COUNTS = (*(f"{name}_{days}" for days in (30, 90, 365) for name in KINDS), "before_90")


def _figures_table(table: str, subject: str, subjects: str) -> None:
    key = f"{subject}_id"
    op.create_table(
        table,
        sa.Column(key, sa.Integer(), nullable=False),
        sa.Column("first_interaction_id", sa.Integer(), nullable=True),
        sa.Column("last_interaction_id", sa.Integer(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=True),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.Column("strength", sa.Double(), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("trend", sa.String(length=10), nullable=False),
        sa.Column("closest_teammate", sa.String(length=320), nullable=True),
        sa.Column("teammates", sa.Integer(), nullable=False),
        sa.Column("team", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            [key], [f"{subjects}.id"], name=op.f(f"fk_{table}_{key}_{subjects}"), ondelete="CASCADE"
        ),
        *(
            sa.ForeignKeyConstraint(
                [column],
                ["interactions.id"],
                name=op.f(f"fk_{table}_{column}_interactions"),
                ondelete="SET NULL",
            )
            for column in ("first_interaction_id", "last_interaction_id")
        ),
        sa.PrimaryKeyConstraint(key, name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_level_last_at"), table, ["level", "last_at"])


def _tags_table(table: str, subject: str, subjects: str) -> None:
    key = f"{subject}_id"
    op.create_table(
        table,
        sa.Column(key, sa.Integer(), nullable=False),
        sa.Column("tag_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            [key], [f"{subjects}.id"], name=op.f(f"fk_{table}_{key}_{subjects}"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["tag_id"], ["tags.id"], name=op.f(f"fk_{table}_tag_id_tags"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(key, "tag_id", name=op.f(f"pk_{table}")),
    )
    op.create_index(op.f(f"ix_{table}_tag_id"), table, ["tag_id"])


def upgrade() -> None:
    _figures_table("contact_figures", "contact", "contacts")
    _figures_table("company_figures", "company", "companies")
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tags")),
        sa.UniqueConstraint("name", name=op.f("uq_tags_name")),
    )
    _tags_table("contact_tags", "contact", "contacts")
    _tags_table("company_tags", "company", "companies")
    op.create_table(
        "segments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("subject", sa.String(length=10), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_segments")),
        sa.UniqueConstraint("name", name=op.f("uq_segments_name")),
    )
    op.create_table(
        "connector_days",
        sa.Column("connector", sa.String(length=200), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("measure", sa.String(length=200), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("connector", "day", "measure", name=op.f("pk_connector_days")),
    )


def downgrade() -> None:
    for table in (
        "connector_days",
        "segments",
        "company_tags",
        "contact_tags",
        "tags",
        "company_figures",
        "contact_figures",
    ):
        op.drop_table(table)
