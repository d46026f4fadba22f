"""Round trips to PostgreSQL, counted: every exchange asyncpg has with the server (prepare,
execute, simple query such as BEGIN or COMMIT) goes through its connection's protocol object,
which :func:`counting` wraps on every connection a store opens."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ringback.store import Store

#: the protocol's calls that are each one exchange with the server
EXCHANGES = ("prepare", "bind_execute", "bind_execute_many", "bind", "execute", "query")


class CountingProtocol:
    """asyncpg's protocol object, passed through, noting each exchange's SQL."""

    def __init__(self, inner: Any, sent: list[str]) -> None:
        self._inner, self._sent = inner, sent

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name not in EXCHANGES:
            return attr

        async def exchange(*args: Any, **kwargs: Any) -> Any:
            query = args[1] if name == "prepare" else (args[0] if args else kwargs.get("state"))
            self._sent.append(f"{name}: {getattr(query, 'query', query)}")
            return await attr(*args, **kwargs)

        return exchange


async def counting(store: Store) -> list[str]:
    """The exchanges of every connection the store opens from now on."""
    sent: list[str] = []
    engine = store.driver.engine

    def wrap_raw(raw: Any) -> None:
        raw._protocol = CountingProtocol(raw._protocol, sent)

    def wrap(dbapi_connection: Any, _record: Any) -> None:
        wrap_raw(dbapi_connection.driver_connection)

    sa.event.listen(engine.sync_engine, "connect", wrap)
    await engine.dispose()  # the pooled connections are opened again, wrapped
    direct = getattr(store.driver, "direct", None)  # PostgreSQL's connections for one add
    if direct is not None:
        direct.on_connect.append(wrap_raw)
        await direct.close()  # opened again, wrapped
    return sent
