"""The ingest function's dependencies (the Lambda tasks of ``IngestStateMachine``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from medsum.adapters.batches import DynamoBatchRepository
from medsum.adapters.dynamodb import DynamoReportRepository
from medsum.adapters.sns import SnsEventPublisher
from medsum.adapters.sqs import SqsWorkQueue
from medsum.adapters.uploads import S3UploadStore
from medsum.clock import utcnow
from medsum.logic.batches import BatchDeps
from medsum.ports import EventPublisher, UploadStore
from medsum.settings import IngestSettings


@dataclass(frozen=True)
class IngestFunctionDeps:
    """The batch stores and the bulk lane, the uploads, and where a settled batch is announced."""

    batch: BatchDeps
    uploads: UploadStore
    publisher: EventPublisher
    #: ``PUBLIC_API_URL``: the links of a ``batch.*`` event.
    public_api_url: str
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def from_settings(cls, settings: IngestSettings) -> IngestFunctionDeps:
        """The AWS adapters named by the ingest function's environment."""
        return cls(
            batch=BatchDeps(
                reports=DynamoReportRepository(
                    settings.table_name, batches_table=settings.batches_table_name
                ),
                batches=DynamoBatchRepository(settings.batches_table_name),
                queue=SqsWorkQueue(settings.bulk_queue_url),
                window=settings.bulk_window,
            ),
            uploads=S3UploadStore(settings.uploads_bucket_name, settings.uploads_kms_key_id),
            publisher=SnsEventPublisher(settings.events_topic_arn),
            public_api_url=settings.public_api_url,
        )
