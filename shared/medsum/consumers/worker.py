"""The worker function's dependencies: one set per lane.

A record's lane is the queue it came from (``WorkQueue``: interactive, ``BulkQueue``: batch items). Each
lane has its own Bedrock client (the bulk lane's rate-limits itself after a throttle and waits longer
before a retry: it yields model quota to the interactive lane, docs/decisions.md "Fair lanes") and its
own queue, through which a message is kept invisible while it is worked on and given its retry delay.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.bedrock import BedrockSummarizer
from medsum.adapters.clients import BEDROCK_CONNECT_TIMEOUT, bedrock_client
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsWorkQueue
from medsum.logic.process import WorkerDeps
from medsum.models import Lane
from medsum.ports import Redelivery, Summarizer
from medsum.settings import WorkerSettings

#: Wait before retrying a throttled model call, per lane: the bulk lane waits longer (it yields).
THROTTLE_WAIT = {Lane.INTERACTIVE: (0.05, 0.3), Lane.BULK: (0.5, 1.5)}


@dataclass(frozen=True)
class WorkerLane:
    """One lane: what ``process_report`` uses, and the queue its messages come from."""

    deps: WorkerDeps
    queue: Redelivery


@dataclass(frozen=True)
class WorkerFunctionDeps:
    interactive: WorkerLane
    bulk: WorkerLane
    #: The bulk lane's queue URL: a record whose source ARN names this queue is in the bulk lane.
    bulk_queue_url: str

    def lane_of(self, event_source_arn: str) -> Lane:
        """The lane of the queue a record came from (its ARN ends with the queue name, as the URL does)."""
        queue_name = event_source_arn.rsplit(":", 1)[-1]
        return Lane.BULK if self.bulk_queue_url.rstrip("/").endswith("/" + queue_name) else Lane.INTERACTIVE

    def lane(self, lane: Lane) -> WorkerLane:
        return self.bulk if lane is Lane.BULK else self.interactive

    def with_summarizer(self, summarizer: Summarizer) -> WorkerFunctionDeps:
        """The same worker with every lane calling ``summarizer`` (another model, or a scripted one)."""
        return replace(
            self,
            interactive=replace(self.interactive, deps=replace(self.interactive.deps, summarizer=summarizer)),
            bulk=replace(self.bulk, deps=replace(self.bulk.deps, summarizer=summarizer)),
        )

    @classmethod
    def from_settings(cls, settings: WorkerSettings) -> WorkerFunctionDeps:
        """The AWS adapters named by the worker function's environment (boto3 clients are made on first
        use: a cold start whose first records are all interactive never makes the bulk lane's)."""
        repository = DynamoReportRepository(settings.table_name, batches_table=settings.batches_table_name)
        batches = DynamoBatchRepository(settings.batches_table_name)
        publisher = SnsEventPublisher(settings.events_topic_arn)
        queues = {
            Lane.INTERACTIVE: SqsWorkQueue(settings.work_queue_url),
            Lane.BULK: SqsWorkQueue(settings.bulk_queue_url),
        }
        guardrail = (
            (settings.bedrock_guardrail_id, settings.bedrock_guardrail_version)
            if settings.bedrock_guardrail_id
            else None
        )

        def lane(lane: Lane) -> WorkerLane:
            read_timeout = settings.bedrock_read_timeout_seconds
            summarizer = BedrockSummarizer(
                settings.bedrock_model_id,
                settings.bedrock_max_tokens,
                bedrock_client=bedrock_client(read_timeout, bulk=lane is Lane.BULK),
                guardrail=guardrail,
            )
            deps = WorkerDeps(
                repository=repository,
                batches=batches,
                summarizer=summarizer,
                publisher=publisher,
                public_api_url=settings.public_api_url,
                lease_seconds=settings.lease_seconds,
                max_receive_count=settings.max_receive_count,
                max_attempts=settings.bedrock_max_attempts,
                budget_seconds=settings.bedrock_retry_budget_seconds,
                requeue_base_delay_seconds=settings.requeue_base_delay_seconds,
                bulk_queue=queues[Lane.BULK],
                throttle_wait=THROTTLE_WAIT[lane],
                max_tokens=settings.bedrock_max_tokens,
                context_tokens=settings.bedrock_context_tokens,
                # The longest one call can take with that client: a call starts only if it fits.
                call_seconds=BEDROCK_CONNECT_TIMEOUT + read_timeout,
            )
            return WorkerLane(deps=deps, queue=queues[lane])

        return cls(
            interactive=lane(Lane.INTERACTIVE), bulk=lane(Lane.BULK), bulk_queue_url=settings.bulk_queue_url
        )
