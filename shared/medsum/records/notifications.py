"""The notifier's record: an SQS message whose body is either a report event as SNS delivers it to the
notifier's queue (not raw: the event is the notification's ``Message``, its owner a message attribute)
or a replay request (``POST /webhooks/deliveries/{id}/replay``)."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.utilities.parser.models.sns import SnsMsgAttributeModel, SnsNotificationModel
from pydantic import BaseModel, ConfigDict, Discriminator, Json, Tag

from medsum.models import ReplayMessage, ReportEvent
from medsum.records import QueueRecord


class EventAttributes(BaseModel):
    """The SNS message attributes of a report event (``adapters/sns.py``); ``owner`` is required."""

    model_config = ConfigDict(extra="allow", defer_build=True)

    owner: SnsMsgAttributeModel


class ReportNotification(SnsNotificationModel):
    """A report event as the topic delivers it to an SQS subscriber."""

    model_config = ConfigDict(defer_build=True)

    # The base allows any text and no attributes; here the event is parsed and its owner required.
    Message: Json[ReportEvent]  # type: ignore[assignment]
    MessageAttributes: EventAttributes  # type: ignore[assignment]

    @property
    def owner(self) -> str:
        """The IAM principal that owns the event's report or batch."""
        return self.MessageAttributes.owner.Value


def _kind(body: Any) -> str:
    return "replay" if isinstance(body, dict) and "replay_delivery_id" in body else "event"


#: What the notifier's queue carries.
NotifierMessage = Annotated[
    Annotated[ReportNotification, Tag("event")] | Annotated[ReplayMessage, Tag("replay")],
    Discriminator(_kind),
]


class NotifierRecord(QueueRecord):
    """One message of the notifier's queue."""

    body: Json[NotifierMessage]
