"""Issue 16, item 4: on a PostgreSQL store one OAuth2 token fetch serves every engine process.

Two HTTP destinations, each with the token cache of its own store connection (two engine
processes sharing one PostgreSQL), against a real local token endpoint and resource server that
count what they are asked (``tests.connectors.peers.HttpPeer``)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import text

from conduit.connectors.base import ConnectorContext
from conduit.connectors.http import HttpDestination, HttpDestinationConfig
from conduit.core.protocols import Outbound
from conduit.store import Store
from conduit.store.cluster import Cluster, SharedTokens
from tests.connectors.peers import HttpPeer, Reply, Seen, json_reply


def _destination(store: Store, **config: Any) -> HttpDestination:
    context = ConnectorContext("c", Path("."), tokens=SharedTokens(Cluster(store.engine)))
    return HttpDestination(HttpDestinationConfig(name="d", type="http", **config), context)


def test_one_token_fetch_serves_two_processes(postgres_url: str) -> None:
    tokens: list[str] = []
    revoked: set[str] = set()

    def handler(seen: Seen) -> Reply:
        if seen.path == "/token":
            tokens.append(f"secret-token-{len(tokens)}")
            return json_reply({"access_token": tokens[-1], "token_type": "bearer",
                               "expires_in": 3600})
        token = seen.headers.get("authorization", "").removeprefix("Bearer ")
        if token not in tokens or token in revoked:
            return json_reply({"error": "invalid_token"}, 401)
        return json_reply({"token": token})

    stores = [Store(postgres_url), Store(postgres_url)]
    stores[0].migrate()
    try:
        with HttpPeer(handler) as peer:
            auth = {"type": "oauth2", "token_url": peer.url("/token"), "client_id": "conduit",
                    "client_secret": "s3cret", "scope": "system/Patient.write"}

            async def scenario() -> None:
                first, second = (_destination(store, url=peer.url("/api"), auth=auth)
                                 for store in stores)
                answers = await asyncio.gather(*[
                    d.send(Outbound(message_id=i, channel="c", destination="d", content=b"{}"))
                    for i in range(5) for d in (first, second)])
                assert len(tokens) == 1  # ten concurrent sends from two processes, one fetch
                assert first.auth.fetches + second.auth.fetches == 1
                assert {json.loads(a)["token"] for a in answers} == {"secret-token-0"}
                # revoked early: the process told 401 fetches anew; the other, told 401 too,
                # takes the new token from the cluster instead of fetching a third
                revoked.add("secret-token-0")
                for d in (first, second):
                    d.auth.invalidate()  # as after a 401 (the destination retries once)
                    out = Outbound(message_id=9, channel="c", destination="d", content=b"{}")
                    assert json.loads(await d.send(out))["token"] == "secret-token-1"
                assert len(tokens) == 2
                await first.close()
                await second.close()

            asyncio.run(scenario())
        with stores[0].engine.connect() as connection:
            stored = connection.execute(text("SELECT token FROM cluster_tokens")).scalar_one()
        assert b"secret-token" not in bytes(stored)  # encrypted at rest
    finally:
        for store in stores:
            store.engine.dispose()
