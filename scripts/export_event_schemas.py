"""Write the JSON Schema of every event (SNS message body and webhook body) to docs/events/.

The schemas are generated from the pydantic models the service publishes (``medsum.models``), one
file per event type; ``tests/unit/test_event_schemas.py`` fails when a committed file is stale.

Run: ``.venv/bin/python scripts/export_event_schemas.py``
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "shared"))

from medsum.models import BatchEventData, EventData, StrictModel  # noqa: E402
from pydantic import Field, create_model  # noqa: E402

EVENTS_DIR = ROOT / "docs" / "events"
_DATA: dict[str, type[StrictModel]] = {
    "report.completed": EventData,
    "report.failed": EventData,
    "batch.completed": BatchEventData,
    "batch.cancelled": BatchEventData,
}
_DESCRIPTIONS = {
    "report.completed": "A report was summarized: read it with GET data.links.self.",
    "report.failed": "A report ended FAILED: GET data.links.self tells why.",
    "batch.completed": "Every item of a batch is COMPLETED or FAILED: download data.links.results.",
    "batch.cancelled": "A cancelled batch settled: items not started are CANCELLED.",
}


def schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema of one event type (envelope ``type``, ``id``, ``timestamp``, ``data``)."""
    model = create_model(
        "Event",
        __base__=StrictModel,
        type=(Literal[event_type], Field(description="The event type (also the SNS attribute `type`).")),
        id=(str, Field(description="Stable event id: the same on every retry (the webhook-id header).")),
        timestamp=(datetime, Field(description="When the event was created (RFC 3339, UTC).")),
        data=(_DATA[event_type], ...),
    )
    document = model.model_json_schema()
    document["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    document["$id"] = f"https://github.com/medsum/medsum/docs/events/{event_type}.schema.json"
    document["title"] = event_type
    document["description"] = (
        _DESCRIPTIONS[event_type] + " Thin: ids, statuses, counts and links only, never report text."
    )
    return document


def render() -> dict[str, str]:
    """File name -> content of every schema file."""
    return {
        f"{event_type}.schema.json": json.dumps(schema(event_type), indent=2, sort_keys=True) + "\n"
        for event_type in _DATA
    }


if __name__ == "__main__":
    EVENTS_DIR.mkdir(parents=True, exist_ok=True)
    for name, content in render().items():
        (EVENTS_DIR / name).write_text(content, encoding="utf-8")
        print(f"wrote docs/events/{name}")
