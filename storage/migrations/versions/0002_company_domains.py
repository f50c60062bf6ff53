"""A company may own several domains: company_domains replaces companies.domain.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "company_domains",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_company_domains_company_id_companies"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_company_domains")),
        sa.UniqueConstraint("domain", name=op.f("uq_company_domains_domain")),
    )
    with op.batch_alter_table("company_domains", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_company_domains_company_id"), ["company_id"], unique=False
        )
    op.execute(
        "INSERT INTO company_domains (company_id, domain, created_at) "
        "SELECT id, domain, created_at FROM companies"
    )
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_companies_domain"), type_="unique")
        batch_op.drop_column("domain")


def downgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("domain", sa.String(length=253), nullable=True))
    # a company keeps one of its domains; the others are lost in the downgrade
    op.execute(
        "UPDATE companies SET domain = (SELECT min(d.domain) FROM company_domains d "
        "WHERE d.company_id = companies.id)"
    )
    op.execute("UPDATE companies SET domain = 'company-' || id WHERE domain IS NULL")
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.alter_column("domain", nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_companies_domain"), ["domain"])
    op.drop_table("company_domains")
