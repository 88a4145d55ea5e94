"""Alembic environment of the school instance (its own version table)."""

from __future__ import annotations

import os

from alembic import context

from school_instance.models import DiaryBase
from shared.db import make_engine

config = context.config


def run() -> None:
    """Run migrations online."""
    engine = config.attributes.get("engine") or make_engine(
        os.environ.get("SCHOOL_DATABASE_URL")
        or os.environ.get("DATABASE_URL")
        or "sqlite:///var/school.db"
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=DiaryBase.metadata,
            version_table="diary_alembic_version",
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
