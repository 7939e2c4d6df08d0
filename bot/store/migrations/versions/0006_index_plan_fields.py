"""case index: whether a case is quarantined and whether it needs the judge (a run plans from the index)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 02:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('case_index') as batch:
        batch.add_column(sa.Column('quarantined', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('judged', sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("DELETE FROM index_state")  # rows indexed before this revision lack the new fields: rebuild them


def downgrade() -> None:
    with op.batch_alter_table('case_index') as batch:
        batch.drop_column('judged')
        batch.drop_column('quarantined')
