"""Deliveries not SENT, read through their messages (migration ``0013_pg_hot_deliveries``).

PostgreSQL has no index on the deliveries' status: it would keep each delivery's outcome from
being written as a HOT update. It needs none: a delivery not SENT belongs to a message not SENT
(the store settles a message SENT only once all its deliveries are final and none failed, and a
requeue puts the message back with its deliveries), and the messages' partial status indexes hold
exactly those. So these queries start from ``messages`` not SENT and read each one's deliveries by
primary key. SQLite keeps its index on the deliveries' status and a plain join.
"""

from __future__ import annotations

from sqlalchemy import Exists, FromClause, Join, and_, literal, literal_column, select, true
from sqlalchemy.sql.elements import ColumnElement

from conduit.store.tables import deliveries, messages

#: Every message with a delivery not SENT is one of these (see the module docstring); the value
#: written in the statement, not bound, so that PostgreSQL matches the partial indexes' predicate
#: in a prepared statement's generic plan too.
NOT_SENT = messages.c.status != literal_column("'SENT'")


def joined(dialect: str, *conditions: ColumnElement[bool]) -> tuple[Join, FromClause]:
    """``messages`` not SENT joined to their deliveries that meet ``conditions`` (terms on
    ``deliveries``), and the deliveries' side to select columns from.

    On PostgreSQL the deliveries are a LATERAL subquery fenced with ``OFFSET 0``: the planner
    then probes the primary key once per message; unfenced, it guesses a hash of a scan of the
    whole table cheaper (it cannot know how few rows match without an index)."""
    if dialect == "postgresql":
        side = (select(deliveries).where(deliveries.c.message_id == messages.c.id, *conditions)
                .offset(0).lateral("open_deliveries"))
        return messages.join(side, and_(true(), NOT_SENT)), side
    return messages.join(deliveries, and_(deliveries.c.message_id == messages.c.id, NOT_SENT,
                                          *conditions)), deliveries


def has_delivery(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
    """A term on ``messages``: not SENT, with a delivery that meets ``conditions``; fenced like
    :func:`joined` (a subquery per message, by primary key)."""
    found: Exists = (select(literal(1)).where(deliveries.c.message_id == messages.c.id,
                                              *conditions).offset(0).exists())
    return and_(NOT_SENT, found)
