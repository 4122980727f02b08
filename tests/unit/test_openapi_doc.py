"""The committed OpenAPI document matches what the api function generates."""

from __future__ import annotations

import json

from scripts.export_openapi import ROOT, render


def test_committed_openapi_document_is_current() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text(encoding="utf-8")
    assert committed == render(), "docs/openapi.json is stale: run .venv/bin/python scripts/export_openapi.py"


def test_document_describes_every_route_and_the_request_model() -> None:
    document = json.loads(render())
    assert set(document["paths"]) >= {
        "/",
        "/summarize",
        "/reports/{report_id}",
        "/patients/{patient_id}/reports",
    }
    request = document["components"]["schemas"]["SummarizeRequest"]
    assert set(request["required"]) == {"patient_id", "report_text"}
    assert request["additionalProperties"] is False
