"""The records the queue-driven functions receive, typed with Powertools' parser models.

A record is validated by Powertools' ``BatchProcessor(model=...)`` before the function's record handler
sees it: a body that is not the expected message is a batch item failure carrying a
``pydantic.ValidationError``, never a ``KeyError`` in a handler. One module per function
(:mod:`medsum.records.work`, :mod:`medsum.records.notifications`), so that each imports only the event
models it receives (cold start).
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.parser.models.sqs import SqsRecordModel
from pydantic import ConfigDict


class QueueRecord(SqsRecordModel):
    """An SQS record of one of our queues; subclasses type its ``body``."""

    model_config = ConfigDict(defer_build=True)

    @property
    def receive_count(self) -> int:
        """How many times SQS has delivered the message (this delivery included)."""
        return int(self.attributes.ApproximateReceiveCount)
