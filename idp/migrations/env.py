"""Alembic environment: the engine comes from the app (idp db upgrade) or DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context

from idp import models  # noqa: F401  (registers the tables)
from shared.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run() -> None:
    """Run migrations online against the configured engine."""
    engine = config.attributes.get("engine") or make_engine(
        os.environ.get("DATABASE_URL", "sqlite:///var/idp.db")
    )
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
