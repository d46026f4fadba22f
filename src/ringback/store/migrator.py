"""The migrations runner: applies the migrations of ``store/migrations.py`` a database lacks."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from ringback.store import schema as t
from ringback.store.migrations import MIGRATIONS, SCHEMA_MIGRATIONS_DDL
from ringback.store.records import to_ms
from ringback.store.repository import Repository


class MigrationRepository(Repository):
    """The schema's version, and the migrations that bring it up to date."""

    async def migrate(self, now: datetime) -> list[int]:
        """Apply the migrations this database lacks; returns their versions."""
        applied: list[int] = []
        async with self.driver.write() as conn:
            await self.driver.lock_migrations(conn)  # one migrator at a time
            await conn.execute(sa.text(SCHEMA_MIGRATIONS_DDL))
            done = set((await conn.execute(sa.select(t.schema_migrations.c.version))).scalars())
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in self.driver.migration_sql(migration):
                    await conn.execute(sa.text(statement))
                await conn.execute(
                    t.schema_migrations.insert().values(
                        version=migration.version, name=migration.name, applied_at=to_ms(now)
                    )
                )
                applied.append(migration.version)
        return applied

    async def schema_version(self) -> int:
        async with self.driver.read() as conn:
            try:
                version = (
                    await conn.execute(sa.select(sa.func.max(t.schema_migrations.c.version)))
                ).scalar()
            except sa.exc.DBAPIError:
                return 0
        return int(version or 0)
