"""Attendees answer meetings (iTIP REPLY): remember when each answer was given.

Meetings are found by their UID through ``interactions.thread``, which is
indexed already; what is new is the time of a participant's answer, so that
an older reply processed after a newer one does not win.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("interaction_participants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("interaction_participants", schema=None) as batch_op:
        batch_op.drop_column("responded_at")
