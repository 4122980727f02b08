"""Work lanes and the metered release of batch items (fairness inside the bulk lane).

Two lanes, each with its own queue, dead-letter queue, alarm and worker concurrency:

- **interactive**: ``POST /summarize``; a client is waiting for one report.
- **bulk**: batch items (inline and uploaded batches).

Inside the bulk lane, a batch never puts all of its items in the queue at once. Its items are numbered
``0 .. total-1`` (``seq``) and their report ids are derived from ``(batch_id, seq)``
(:func:`batch_item_id`). At creation only the first ``window`` items are sent (:func:`seed_messages`);
when item ``seq`` reaches a terminal state (completed, failed, cancelled, or gone), the worker sends
item ``seq + window`` (:func:`successor`). Each batch therefore has at most ``window`` items queued or
running, whatever its size: two batches submitted together progress at about the same rate, and a
10-item batch submitted after a 100,000-item batch waits behind at most ``window`` of its messages,
not 100,000. See ``docs/decisions.md`` (2026-11-30, fair lanes).

A released successor is remembered on the finished report (``next_released``), so a redelivered
message does not release it twice; a crash between the send and that mark sends a duplicate
message, which the worker's conditional claim absorbs like any SQS duplicate.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from medsum.models import Lane, WorkMessage
from medsum.ports import DeadLetter, DeadLetterQueue, WorkQueue

#: Namespace of the deterministic report ids of batch items.
ITEM_ID_NAMESPACE = uuid.UUID("0b8f5c1e-7a44-5d0c-9a53-6d1f3c2e9b71")


def batch_item_id(batch_id: str, seq: int) -> str:
    """The report id of item ``seq`` (0-based ordinal among the batch's valid items)."""
    return uuid.uuid5(ITEM_ID_NAMESPACE, f"{batch_id}#{seq}").hex


def item_message(batch_id: str, seq: int, window: int, total: int) -> WorkMessage:
    """The bulk-lane work message of item ``seq`` of a batch of ``total`` items."""
    return WorkMessage(
        report_id=batch_item_id(batch_id, seq), batch_id=batch_id, seq=seq, window=window, total=total
    )


def seed_messages(batch_id: str, total: int, window: int) -> list[WorkMessage]:
    """The first window of a batch: items ``0 .. min(window, total) - 1``."""
    return [item_message(batch_id, seq, window, total) for seq in range(min(window, total))]


def successor(message: WorkMessage) -> WorkMessage | None:
    """The item released when ``message``'s item finishes (None: last of its chain, or not metered)."""
    if message.batch_id is None or message.seq is None or message.window is None or message.total is None:
        return None
    following = message.seq + message.window
    if following >= message.total:
        return None
    return item_message(message.batch_id, following, message.window, message.total)


def chain(message: WorkMessage) -> list[WorkMessage]:
    """``message`` and every item released after it in its window slot (``seq``, ``seq + window``…)."""
    items: list[WorkMessage] = []
    current: WorkMessage | None = message
    while current is not None:
        items.append(current)
        current = successor(current)
    return items


class LaneQueues(WorkQueue):
    """Sends each work message to its lane's queue (``WorkMessage.lane``)."""

    def __init__(self, queues: Mapping[Lane, WorkQueue]) -> None:
        self._queues = dict(queues)

    def enqueue(self, message: WorkMessage) -> None:
        self._queues[message.lane].enqueue(message)

    def enqueue_many(self, messages: Sequence[WorkMessage]) -> list[WorkMessage]:
        unsent: list[WorkMessage] = []
        for lane, queue in self._queues.items():
            mine = [m for m in messages if m.lane is lane]
            if mine:
                unsent.extend(queue.enqueue_many(mine))
        return unsent


class LaneDeadLetters(DeadLetterQueue):
    """The dead-letter queues of every lane read as one (each message keeps its ``lane``)."""

    def __init__(self, queues: Mapping[Lane, DeadLetterQueue]) -> None:
        self._queues = dict(queues)

    def snapshot(self, visibility_seconds: int, max_messages: int) -> tuple[list[DeadLetter], bool]:
        seen: list[DeadLetter] = []
        truncated = False
        for queue in self._queues.values():
            messages, cut = queue.snapshot(visibility_seconds, max(0, max_messages - len(seen)))
            seen.extend(messages)
            truncated = truncated or cut
            if len(seen) >= max_messages:
                return seen, True
        return seen, truncated

    def release(self, messages: Sequence[DeadLetter]) -> None:
        for lane, queue in self._queues.items():
            mine = [m for m in messages if m.lane is lane]
            if mine:
                queue.release(mine)

    def delete(self, message: DeadLetter) -> None:
        self._queues[message.lane].delete(message)


__all__ = [
    "ITEM_ID_NAMESPACE",
    "LaneDeadLetters",
    "LaneQueues",
    "batch_item_id",
    "chain",
    "item_message",
    "seed_messages",
    "successor",
]
