"""The store's group writes count their statements, rows and commits (``store.opcount``), in
whichever process and on whichever database they run."""

from __future__ import annotations

import asyncio

import pytest

from conduit.store import Store
from conduit.store.opcount import COUNTS, StoreOperations
from conduit.store.store import Route

RAW = b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|W1|P|2.5\rPID|1||42\r"
MESSAGES = 50


def _write(store: Store) -> tuple[int, int, int]:
    """MESSAGES messages with two deliveries each, both delivered; what the counts grew by."""
    before = (COUNTS.statements, COUNTS.rows, COUNTS.commits)

    async def scenario() -> None:
        await store.writer.start()
        ids = await asyncio.gather(*[
            store.accepted("ch", RAW, control_id=str(i), message_type="ADT^A01",
                           status="TRANSFORMED", transformed=RAW, error=None,
                           routes=[Route("a", RAW), Route("b", RAW)], search=[("k", str(i))])
            for i in range(MESSAGES)])
        await asyncio.gather(*[
            store.delivered(i, name, "SENT", attempts=1, response=None, error=None)
            for i in ids for name in ("a", "b")])
        await store.close()

    asyncio.run(scenario())
    return (COUNTS.statements - before[0], COUNTS.rows - before[1], COUNTS.commits - before[2])


@pytest.mark.parametrize(("database", "writing_process"), [
    ("sqlite", True), ("sqlite", False), ("postgres", False)],
    ids=["sqlite-writing-process", "sqlite-inline", "postgres"])
def test_group_writes_are_counted_exactly(request: pytest.FixtureRequest, database: str,
                                          writing_process: bool) -> None:
    """Rows: per message its row, two deliveries and a search field, then two delivery updates
    and the message settled: 7. Groups of concurrent writes share statements and commits. The
    writing process's counts come back to the engine's."""
    store = Store(str(request.getfixturevalue(f"{database}_url")),
                  writing_process=writing_process)
    store.migrate()
    statements, rows, commits = _write(store)
    assert store.counts() == {"ch": {"SENT": MESSAGES}}
    store.engine.dispose()
    assert rows == 7 * MESSAGES
    assert 1 <= commits < 3 * MESSAGES  # grouped: fewer commits than writes
    assert commits <= statements < 10 * MESSAGES


def test_take_hands_over_what_was_counted_and_starts_again() -> None:
    counts = StoreOperations(statements=3, rows=7, commits=1)
    assert counts.take() == (3, 7, 1)
    assert counts.take() == (0, 0, 0)
    counts.add((2, 5, 1))
    assert (counts.statements, counts.rows, counts.commits) == (2, 5, 1)
