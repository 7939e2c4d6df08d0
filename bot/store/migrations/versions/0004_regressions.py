"""judge reviews (issue 17: the judge checked against people)

Revision ID: 0004
Revises: 0003 (the integrator re-chains it after the other migrations)
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('judge_reviews',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('case_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('trial', sa.Integer(), nullable=False),
    sa.Column('rubric_index', sa.Integer(), nullable=False),
    sa.Column('rubric', sa.Text(), nullable=False),
    sa.Column('reply', sa.Text(), nullable=True),
    sa.Column('judge_passed', sa.Boolean(), nullable=False),
    sa.Column('human_passed', sa.Boolean(), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('reviewer', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['eval_runs.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('run_id', 'case_id', 'trial', 'rubric_index', name='uq_judge_reviews_verdict')
    )
    op.create_index(op.f('ix_judge_reviews_run_id'), 'judge_reviews', ['run_id'], unique=False)
    op.create_index(op.f('ix_judge_reviews_case_id'), 'judge_reviews', ['case_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_judge_reviews_case_id'), table_name='judge_reviews')
    op.drop_index(op.f('ix_judge_reviews_run_id'), table_name='judge_reviews')
    op.drop_table('judge_reviews')
