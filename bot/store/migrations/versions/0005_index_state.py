"""index state: the corpus commit the case index was built from

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03 18:40:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('index_state',
    sa.Column('root', sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
    sa.Column('commit', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('dirty', sa.JSON(), nullable=False),
    sa.Column('problems', sa.JSON(), nullable=False),
    sa.Column('refreshed_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('root')
    )


def downgrade() -> None:
    op.drop_table('index_state')
