"""The lanes: routing work messages and dead letters per lane, and the metered release of batch items."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from medsum.logic.lanes import (
    LaneDeadLetters,
    LaneQueues,
    batch_item_id,
    chain,
    item_message,
    seed_messages,
    successor,
)
from medsum.models import Lane, WorkMessage

from tests.support.fakes import FakeDeadLetterQueue, FakeQueue

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def test_single_reports_go_to_the_interactive_lane_and_batch_items_to_the_bulk_lane() -> None:
    interactive, bulk = FakeQueue(), FakeQueue()
    lanes = LaneQueues({Lane.INTERACTIVE: interactive, Lane.BULK: bulk})
    # When a single report and two batch items are sent
    lanes.enqueue(WorkMessage(report_id="r1"))
    unsent = lanes.enqueue_many([item_message("b1", 0, 2, 5), WorkMessage(report_id="r2")])
    lanes.enqueue(item_message("b1", 1, 2, 5))
    # Then each went to its own lane's queue
    assert interactive.sent == ["r1", "r2"]
    assert bulk.sent == [batch_item_id("b1", 0), batch_item_id("b1", 1)]
    assert unsent == []


def test_unsent_messages_of_every_lane_are_returned() -> None:
    interactive, bulk = FakeQueue(fail=True), FakeQueue(fail=True)
    lanes = LaneQueues({Lane.INTERACTIVE: interactive, Lane.BULK: bulk})
    messages = [WorkMessage(report_id="r1"), item_message("b1", 0, 1, 1)]
    assert sorted(m.report_id for m in lanes.enqueue_many(messages)) == sorted(m.report_id for m in messages)


def test_a_batch_starts_with_one_window_and_each_item_names_the_next_of_its_slot() -> None:
    seeds = seed_messages("b1", total=7, window=3)
    assert [m.seq for m in seeds] == [0, 1, 2]
    assert all(m.lane is Lane.BULK and m.total == 7 and m.window == 3 for m in seeds)
    # Each slot walks the batch in steps of the window, and the slots together cover it exactly once
    slots = [[m.seq or 0 for m in chain(seed)] for seed in seeds]
    assert slots == [[0, 3, 6], [1, 4], [2, 5]]
    assert sorted(seq for slot in slots for seq in slot) == list(range(7))
    assert successor(item_message("b1", 6, 3, 7)) is None
    assert successor(WorkMessage(report_id="r1")) is None  # a single report releases nothing


def test_a_batch_smaller_than_the_window_is_queued_at_once() -> None:
    assert [m.report_id for m in seed_messages("b1", total=2, window=25)] == [
        batch_item_id("b1", 0),
        batch_item_id("b1", 1),
    ]


def test_item_ids_are_stable_per_batch_and_ordinal() -> None:
    assert batch_item_id("b1", 3) == batch_item_id("b1", 3)
    assert len({batch_item_id("b1", 3), batch_item_id("b1", 4), batch_item_id("b2", 3)}) == 3


def test_dead_letters_of_both_lanes_are_read_as_one_and_each_goes_back_to_its_own_queue() -> None:
    interactive = FakeDeadLetterQueue(lane=Lane.INTERACTIVE)
    bulk = FakeDeadLetterQueue(lane=Lane.BULK)
    interactive.add('{"report_id": "r1", "version": 1}', NOW)
    bulk.add(item_message("b1", 0, 1, 1).model_dump_json(), NOW)
    lanes = LaneDeadLetters({Lane.INTERACTIVE: interactive, Lane.BULK: bulk})
    # When an operator reads both
    seen, truncated = lanes.snapshot(visibility_seconds=15, max_messages=10)
    assert not truncated and sorted(m.lane.value for m in seen) == ["bulk", "interactive"]
    # Then releasing and deleting reach the queue each message came from
    lanes.release(seen)
    assert interactive.hidden == set() and bulk.hidden == set()
    (from_bulk,) = [m for m in seen if m.lane is Lane.BULK]
    lanes.delete(from_bulk)
    assert bulk.deleted == [from_bulk.message_id] and interactive.deleted == []


@pytest.mark.parametrize("limit", [1, 2])
def test_reading_both_lanes_stops_at_the_limit_and_says_so(limit: int) -> None:
    interactive = FakeDeadLetterQueue(lane=Lane.INTERACTIVE)
    bulk = FakeDeadLetterQueue(lane=Lane.BULK)
    for n in range(2):
        interactive.add(f'{{"report_id": "i{n}", "version": 1}}', NOW)
        bulk.add(f'{{"report_id": "b{n}", "batch_id": "b", "version": 1}}', NOW)
    seen, truncated = LaneDeadLetters({Lane.INTERACTIVE: interactive, Lane.BULK: bulk}).snapshot(15, limit)
    assert len(seen) == limit and truncated
