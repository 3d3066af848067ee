"""Async database access (SQLAlchemy 2 + psycopg 3) and per-service Alembic migrations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from servicekit.observability import trace_engine


def libpq_dsn(url: str) -> str:
    """`postgresql+psycopg://...` (SQLAlchemy) -> `postgresql://...` (libpq, for LISTEN)."""
    scheme, rest = url.split("://", 1)
    return f"postgresql://{rest}" if scheme.startswith("postgresql") else url


class Database:
    def __init__(self, url: str, *, pool_size: int = 10):
        self.url = url
        self.engine = create_async_engine(url, pool_size=pool_size, max_overflow=pool_size,
                                          pool_pre_ping=True)
        trace_engine(self.engine)
        self._sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        async with self._sessions() as session:
            yield session

    async def ping(self) -> bool:
        async with self.engine.connect() as conn:
            await conn.execute(text("select 1"))
        return True

    async def dispose(self) -> None:
        await self.engine.dispose()


def upgrade(migrations_dir: Path, url: str, revision: str = "head") -> None:
    """Apply a service's Alembic migrations (its `migrations/` folder holds env.py and versions/)."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def run_alembic_env(target_metadata) -> None:
    """Body of every service's migrations/env.py: online migrations over a sync psycopg engine."""
    from alembic import context
    from sqlalchemy import create_engine, pool

    config = context.config
    url = config.get_main_option("sqlalchemy.url")
    if url is None:
        raise RuntimeError("no sqlalchemy.url in the Alembic config (servicekit.db.upgrade sets it)")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
        with context.begin_transaction():
            # replicas starting together (Kubernetes init containers) migrate one after another: the
            # lock is held until commit, and the next one then finds the schema already at head
            connection.execute(text("SELECT pg_advisory_xact_lock(hashtext('alembic-upgrade'))"))
            context.run_migrations()
    engine.dispose()
