"""Batch parsing, creation, counting, cancellation and settlement with fakes at the ports."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import timedelta

import pytest
from medsum.errors import BatchInputError, BatchNotFoundError
from medsum.logic import batches as batch_logic
from medsum.logic.batches import (
    BatchDeps,
    ResultsFile,
    cancel_batch,
    create_batch,
    deliver_results,
    get_batch,
    list_batches,
    parse_batch,
)
from medsum.logic.ingest import create_upload_batch
from medsum.logic.lanes import batch_item_id, item_message
from medsum.logic.process import Outcome, WorkerDeps, process_report
from medsum.models import BatchStatus, Lane, ReportStatus, WorkMessage
from medsum.ports import UploadObject, UploadStore

from tests.support.clock import FakeClock
from tests.support.fakes import (
    FakePublisher,
    FakeQueue,
    InMemoryBatchRepository,
    InMemoryRepository,
    ScriptedSummarizer,
)

OWNER = "arn:aws:iam::123456789012:user/clinic-a"
OTHER = "arn:aws:iam::123456789012:user/clinic-b"
REPLY = json.dumps({"summary": "ok", "key_findings": [], "diagnoses": [], "medications": [], "follow_up": []})


def line(custom_id: str, text: str = "FINDINGS: Normal.", **extra: object) -> str:
    return json.dumps({"custom_id": custom_id, "patient_id": "p-1", "report_text": text, **extra})


def ndjson(*lines: str) -> str:
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------- parsing
def test_malformed_lines_are_reported_and_the_rest_kept() -> None:
    body = ndjson(
        line("a"), "{not json", line("b", report_type="poem"), line("c"), json.dumps([1]), line("d", text="")
    )
    parsed = parse_batch(body, ndjson=True)
    assert [item.custom_id for _, item in parsed.items] == ["a", "c"]
    assert [(e.line, e.custom_id, e.code) for e in parsed.errors] == [
        (2, None, "invalid_json"),
        (3, "b", "invalid_item"),
        (5, None, "invalid_item"),
        (6, "d", "invalid_item"),
    ]
    # messages name fields, never values
    assert "report_type" in parsed.errors[1].message and "poem" not in parsed.errors[1].message


def test_json_envelope_numbers_items_from_one() -> None:
    body = json.dumps({"reports": [json.loads(line("x")), {"custom_id": "y"}], "metadata": {"run": "7"}})
    parsed = parse_batch(body, ndjson=False)
    assert [i.custom_id for _, i in parsed.items] == ["x"]
    assert parsed.errors[0].line == 2 and parsed.metadata == {"run": "7"}


def test_unicode_line_separators_inside_strings_do_not_split_lines() -> None:
    parsed = parse_batch(ndjson(line("a", text="FINDINGS:\u2028Normal.")), ndjson=True)
    assert len(parsed.items) == 1 and parsed.errors == []


@pytest.mark.parametrize(
    ("body", "is_ndjson", "code"),
    [
        (ndjson(line("a"), line("b"), line("a")), True, "duplicate_custom_id"),
        (ndjson("{bad", json.dumps({"custom_id": "x"})), True, "no_valid_items"),
        (ndjson(*(line(f"i{n}") for n in range(1_001))), True, "too_many_items"),
        ("{not json", False, "invalid_json"),
        (json.dumps({"items": []}), False, "invalid_request"),
        (json.dumps({"reports": [], "extra": 1}), False, "invalid_request"),
        (json.dumps({"reports": [json.loads(line("a"))], "metadata": {"k": 1}}), False, "invalid_request"),
    ],
)
def test_whole_batch_rejections(body: str, is_ndjson: bool, code: str) -> None:
    with pytest.raises(BatchInputError) as raised:
        parse_batch(body, ndjson=is_ndjson)
    assert raised.value.code == code


# ------------------------------------------------------------------------------------- create and run
class World:
    """A batch repository, a bulk queue and a worker; ``run()`` drains the queue like the worker."""

    def __init__(self, script: list[str | Exception] | None = None, window: int = 25) -> None:
        self.reports = InMemoryRepository()
        self.batches = InMemoryBatchRepository(self.reports)
        self.queue = FakeQueue()
        self.publisher = FakePublisher()
        self.clock = FakeClock()
        self.summarizer = ScriptedSummarizer(script or [REPLY])
        self.deps = BatchDeps(reports=self.reports, batches=self.batches, queue=self.queue, window=window)
        self.worker = WorkerDeps(
            repository=self.reports,
            summarizer=self.summarizer,
            publisher=self.publisher,
            public_api_url="https://api.test/v1",
            lease_seconds=60,
            max_receive_count=5,
            max_attempts=1,
            budget_seconds=1,
            requeue_base_delay_seconds=1,
            batches=self.batches,
            clock=self.clock,
            bulk_queue=self.queue,
            call_seconds=65.0,
        )

    def create(self, count: int, batch_id: str = "b1") -> None:
        parsed = parse_batch(ndjson(*(line(f"c{n:03d}") for n in range(count))), ndjson=True)
        create_batch(
            parsed,
            OWNER,
            self.deps,
            batch_id=batch_id,
            now=self.clock(),
            retention_days=1,
        )

    @staticmethod
    def item(seq: int, batch_id: str = "b1") -> str:
        return batch_item_id(batch_id, seq)

    def deliver(self, seq: int, batch_id: str = "b1") -> Outcome:
        """Deliver item ``seq``'s work message (as the bulk lane would, in or out of turn)."""
        batch = self.batches.get(batch_id)
        assert batch is not None
        message = item_message(batch_id, seq, self.deps.window, batch.total)
        return self.process(message)

    def process(self, message: WorkMessage) -> Outcome:
        return process_report(
            message.report_id, 1, self.worker, lambda: 100.0, batch_id=message.batch_id, message=message
        )

    def run(self) -> list[str]:
        """Deliver queued messages in order until the queue is empty; returns the report ids seen."""
        seen: list[str] = []
        while self.queue.messages:
            message = self.queue.messages.pop(0)
            seen.append(message.report_id)
            self.process(message)
        return seen


def test_created_batch_is_in_progress_with_its_first_window_queued_in_the_bulk_lane() -> None:
    world = World(window=25)
    world.create(30)
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.IN_PROGRESS
    assert batch.counts.total == batch.counts.pending == 30
    # Only the first window is queued; every item is stored
    assert world.queue.sent == [world.item(n) for n in range(25)]
    assert {m.lane for m in world.queue.messages} == {Lane.BULK}
    assert {r.batch_id for r in world.reports.items.values()} == {"b1"} and len(world.reports.items) == 30


def test_each_finished_item_releases_the_next_one_until_every_item_ran_once() -> None:
    # Given a batch of 10 with a window of 3
    world = World(window=3)
    world.create(10)
    # When the worker drains the bulk queue
    seen = world.run()
    # Then each item was queued exactly once, the batch completed, and the model ran once per item
    assert sorted(seen) == sorted(world.item(n) for n in range(10)) and len(seen) == 10
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.COMPLETED and batch.counts.completed == 10
    assert len(world.summarizer.calls) == 10


def test_a_redelivered_message_does_not_release_the_next_item_twice() -> None:
    world = World(window=2)
    world.create(5)
    first = world.queue.messages.pop(0)
    world.process(first)  # item 0 completes and releases item 2
    world.process(first)  # a duplicate delivery of item 0
    assert [m.report_id for m in world.queue.messages].count(world.item(2)) == 1


def test_a_failed_item_still_releases_the_next_one() -> None:
    world = World(script=['{"summary": 1}'], window=1)  # invalid output: FAILED at once
    world.create(3)
    world.run()
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.COMPLETED and batch.counts.failed == 3


def test_cancelling_a_windowed_batch_cancels_the_items_never_released() -> None:
    world = World(window=2)
    world.create(6)
    cancel_batch(world.batches, OWNER, "b1", world.clock())
    world.run()
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.CANCELLED and batch.counts.cancelled == 6
    assert world.summarizer.calls == []


def test_two_batches_share_the_bulk_lane_whatever_their_sizes() -> None:
    # Given a big batch, then a small one submitted after it
    world = World(window=4)
    world.create(400, batch_id="big")
    world.create(8, batch_id="small")
    # When the worker drains the queue in order
    seen = world.run()
    # Then the small batch was done within its first few rounds, not after the big batch's 400 items
    last_small = max(i for i, rid in enumerate(seen) if rid in {world.item(n, "small") for n in range(8)})
    assert last_small < 20
    assert get_batch(world.batches, OWNER, "small").status is BatchStatus.COMPLETED
    assert get_batch(world.batches, OWNER, "big").counts.completed == 400


def test_unqueued_items_are_failed_and_counted() -> None:
    world = World()
    world.queue.unsendable = {world.item(1)}
    world.create(3)
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.counts.failed == 1 and batch.counts.pending == 2
    assert world.reports.items[world.item(1)].error is not None


def test_batch_completes_when_its_unqueued_items_are_the_last_open_ones() -> None:
    # Given workers that finish every queued item before create_batch marks the unqueued one failed
    world = World()
    world.deps = replace(world.deps, publisher=world.publisher)
    world.queue.unsendable = {world.item(2)}
    original = world.queue.enqueue_many

    def enqueue_and_run(messages: Sequence[WorkMessage]) -> list[WorkMessage]:
        unsent = original(messages)
        world.run()
        return unsent

    world.queue.enqueue_many = enqueue_and_run  # type: ignore[method-assign]
    parsed = parse_batch(ndjson(*(line(f"c{n}") for n in range(3))), ndjson=True)
    create_batch(
        parsed,
        OWNER,
        world.deps,
        batch_id="b1",
        now=world.clock(),
        retention_days=1,
        public_api_url="https://api.test/v1",
    )
    # Then the batch settles at creation: completed, exact counts, one batch.completed event
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.COMPLETED
    assert (batch.counts.completed, batch.counts.failed, batch.counts.pending) == (2, 1, 0)
    events = [e for e, _ in world.publisher.events if e.type.startswith("batch.")]
    assert [e.type for e in events] == ["batch.completed"]


def test_last_item_settles_the_batch_once_and_publishes_one_event() -> None:
    world = World()
    world.create(3)
    world.run()
    # a duplicate delivery of an item changes nothing
    assert world.deliver(0) is Outcome.SKIPPED
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.COMPLETED and batch.completed_at is not None
    assert batch.counts.completed == 3 and batch.counts.pending == batch.counts.processing == 0
    batch_events = [e for e, _ in world.publisher.events if e.type.startswith("batch.")]
    assert len(batch_events) == 1 and batch_events[0].type == "batch.completed"
    assert len(world.summarizer.calls) == 3


def test_cancel_skips_items_not_started_and_lets_started_ones_finish() -> None:
    world = World()
    world.create(4)
    world.deliver(0)  # completed before the cancel
    world.reports.claim(world.item(1), world.clock(), 60, "someone", batch_id="b1")  # started elsewhere
    cancel_batch(world.batches, OWNER, "b1", world.clock())
    assert get_batch(world.batches, OWNER, "b1").status is BatchStatus.CANCELLING
    world.deliver(2)
    world.deliver(3)
    assert world.reports.items[world.item(2)].status is ReportStatus.CANCELLED
    assert len(world.summarizer.calls) == 1
    # the started item finishes, then the batch settles as cancelled
    world.clock.advance(61)
    world.deliver(1)
    batch = get_batch(world.batches, OWNER, "b1")
    assert batch.status is BatchStatus.CANCELLED
    assert (batch.counts.completed, batch.counts.cancelled) == (2, 2)
    assert [e.type for e, _ in world.publisher.events if e.type.startswith("batch.")] == ["batch.cancelled"]


def test_results_join_on_custom_id_and_other_owners_see_nothing() -> None:
    world = World()
    world.create(3)
    world.deliver(1)
    body = deliver_results(world.reports, world.batches, MemoryResults(), OWNER, "b1", world.clock())
    assert isinstance(body, str)
    lines = [json.loads(x) for x in body.splitlines()]
    assert [(x["custom_id"], x["status"]) for x in lines] == [
        ("c000", "PENDING"),
        ("c001", "COMPLETED"),
        ("c002", "PENDING"),
    ]
    assert lines[1]["summary"] is not None and lines[0]["summary"] is None
    with pytest.raises(BatchNotFoundError):
        deliver_results(world.reports, world.batches, MemoryResults(), OTHER, "b1", world.clock())
    with pytest.raises(BatchNotFoundError):
        cancel_batch(world.batches, OTHER, "b1", world.clock())


class MemoryResults(UploadStore):
    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def presign_put(self, key: str, expires_seconds: int) -> tuple[str, dict[str, str]]:
        raise NotImplementedError

    def head(self, bucket: str, key: str) -> UploadObject:
        raise NotImplementedError

    def read_lines(
        self, upload: UploadObject, start_byte: int = 0, end_byte: int | None = None
    ) -> Iterator[bytes]:
        raise NotImplementedError

    def put_results(self, key: str, chunks: Iterable[bytes]) -> int:
        self.files[key] = b"".join(chunks)
        return len(self.files[key])

    def presign_get(self, key: str, expires_seconds: int) -> str:
        return f"https://files.test/{key}?expires={expires_seconds}"


def test_small_batch_results_are_inline_and_large_ones_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    world, store = World(), MemoryResults()
    world.create(5)
    world.deliver(1)
    inline = deliver_results(world.reports, world.batches, store, OWNER, "b1", world.clock())
    assert isinstance(inline, str) and store.files == {}
    assert [json.loads(x)["custom_id"] for x in inline.splitlines()] == [f"c{n:03d}" for n in range(5)]
    # Over the item limit (or the byte limit), the same lines become a file behind a presigned URL
    for name, value in [("INLINE_RESULTS_MAX_ITEMS", 4), ("INLINE_RESULTS_MAX_BYTES", 100)]:
        with monkeypatch.context() as patch:
            patch.setattr(batch_logic, name, value)
            result = deliver_results(world.reports, world.batches, store, OWNER, "b1", world.clock())
        assert isinstance(result, ResultsFile)
        (key,) = store.files
        assert store.files[key].decode() == inline and result.size == len(inline.encode())
        assert result.url.endswith("?expires=900") and OWNER not in key
        assert result.expires_at == world.clock() + timedelta(seconds=900)
    with pytest.raises(BatchNotFoundError):
        deliver_results(world.reports, world.batches, store, OTHER, "b1", world.clock())


def test_an_upload_batch_that_never_gets_its_file_fails_after_an_hour() -> None:
    world = World()
    create_upload_batch(world.batches, OWNER, batch_id="u1", now=world.clock(), retention_days=1)
    world.clock.advance(59 * 60)
    assert get_batch(world.batches, OWNER, "u1", world.clock()).status is BatchStatus.VALIDATING
    world.clock.advance(2 * 60)
    (listed,), _ = list_batches(world.batches, OWNER, 10, None, world.clock())
    assert listed.status is BatchStatus.FAILED
    batch = get_batch(world.batches, OWNER, "u1", world.clock())
    assert batch.status is BatchStatus.FAILED
    assert [(e.line, e.code) for e in batch.errors] == [(0, "upload_expired")]
    # A running batch is never expired
    world.create(2, batch_id="b2")
    world.clock.advance(24 * 3600)
    assert get_batch(world.batches, OWNER, "b2", world.clock()).status is BatchStatus.IN_PROGRESS


def test_cancelling_an_upload_batch_before_its_file_cancels_it_at_once() -> None:
    world = World()
    create_upload_batch(world.batches, OWNER, batch_id="u1", now=world.clock(), retention_days=1)
    batch = cancel_batch(world.batches, OWNER, "u1", world.clock(), world.publisher, "https://api.test/v1")
    assert batch.status is BatchStatus.CANCELLED
    assert [(e.type, e.data.status) for e, _ in world.publisher.events] == [
        ("batch.cancelled", BatchStatus.CANCELLED)
    ]
    # A second cancel changes nothing and publishes nothing
    cancel_batch(world.batches, OWNER, "u1", world.clock(), world.publisher, "https://api.test/v1")
    assert len(world.publisher.events) == 1
