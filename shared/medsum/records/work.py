"""The worker's record: an SQS message whose body is a :class:`~medsum.models.WorkMessage`."""

from __future__ import annotations

from pydantic import Json

from medsum.models import WorkMessage
from medsum.records import QueueRecord


class WorkRecord(QueueRecord):
    """One work message as the worker's event source mappings deliver it (either lane's queue)."""

    # The base allows any text; here it is parsed into the work message (or fails validation).
    body: Json[WorkMessage]
