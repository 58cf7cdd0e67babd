"""Full-text indexing of what arrived since the last pass, once a second, for the channels
that opted in (``search: {full_text: true}``, told to the store by their runtimes).

On a store other processes can open (a file, PostgreSQL) a pass runs in a helper process of its
own (``store.fulltext``: it takes neither the engine's event loop nor its GIL, and follows the
engine when it dies); on an in-memory SQLite store, in a thread on the engine's connection.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ProcessPoolExecutor

from conduit.engine.services import Periodic
from conduit.store import Store
from conduit.store.fulltext import Indexer, index_pending
from conduit.store.process import follow_engine, helper_context

INTERVAL = 1.0
LIMIT = 20_000  # messages a pass takes at most


class FullTextIndexing(Periodic):
    def __init__(self, store: Store) -> None:
        super().__init__("full-text indexing", INTERVAL, self.run_once, on_stop=self._close)
        self.store = store
        self._indexer: Indexer | None = None
        self._process: ProcessPoolExecutor | None = None

    async def run_once(self) -> None:
        """One pass over what arrived since the last one."""
        if not self.store.shared:
            if self._indexer is None:
                self._indexer = Indexer(self.store.engine)
            await asyncio.to_thread(self._indexer.run, LIMIT,
                                    channels=frozenset(self.store.full_text_channels))
            return
        if self._process is None:
            self._process = ProcessPoolExecutor(
                1, mp_context=helper_context(), initializer=follow_engine,
                initargs=(os.getpid(),))
        await asyncio.get_running_loop().run_in_executor(
            self._process, index_pending, self.store.url, LIMIT,
            frozenset(self.store.full_text_channels))

    async def _close(self) -> None:
        """A pass under way finishes its transaction."""
        if self._process is not None:
            await asyncio.to_thread(self._process.shutdown, True, cancel_futures=True)
            self._process = None
