"""SQL views for analysts: ``fact_interactions`` and its dimensions (a star).

The statements live in :mod:`storage.star_views`, where their columns and
what they leave out are described; this revision only creates and drops them.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

from storage import star_views

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in star_views.create_statements(op.get_bind().dialect.name):
        op.execute(statement)


def downgrade() -> None:
    for statement in star_views.drop_statements():
        op.execute(statement)
