"""The committed event JSON Schemas match the published models, and real events validate."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from medsum.models import EventData, Links, ReportEvent, ReportStatus
from pydantic import TypeAdapter

from scripts.export_event_schemas import EVENTS_DIR, render


def test_committed_event_schemas_are_current() -> None:
    for name, content in render().items():
        committed = (EVENTS_DIR / name).read_text(encoding="utf-8")
        assert committed == content, f"docs/events/{name} is stale: run scripts/export_event_schemas.py"


@pytest.mark.parametrize("event_type", ["report.completed", "report.failed"])
def test_report_event_envelope_matches_its_schema(event_type: str) -> None:
    schema = json.loads((EVENTS_DIR / f"{event_type}.schema.json").read_text(encoding="utf-8"))
    assert schema["properties"]["type"]["const"] == event_type
    assert set(schema["required"]) == {"type", "id", "timestamp", "data"}
    assert schema["additionalProperties"] is False
    event = ReportEvent(
        type=event_type,  # type: ignore[arg-type]
        id="evt_1",
        timestamp=datetime(2026, 11, 26, tzinfo=UTC),
        data=EventData(
            report_id="r1", status=ReportStatus.COMPLETED, links=Links(self="https://x/reports/r1")
        ),
    )
    body = json.loads(event.model_dump_json())
    assert set(body) == set(schema["properties"])
    assert set(body["data"]) <= set(schema["$defs"]["EventData"]["properties"])
    TypeAdapter(ReportEvent).validate_python(body)
