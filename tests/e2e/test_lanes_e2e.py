"""Fair lanes on the local stack: a big batch holds up neither another client's single report nor a
small batch submitted after it (template defaults: BulkWindowPerBatch 10, separate lane concurrency).

The assertions are about order, not seconds, so they hold on a loaded machine: with one shared queue the
single report and the small batch would finish only after every item of the big batch ahead of them.
"""

from __future__ import annotations

import json
import time
from typing import Any

from medsum_local.testing import ApiClient

TEXT = "FINDINGS: Heart size is normal. Lungs are clear. IMPRESSION: No acute cardiopulmonary process."
BIG = 200


def _batch(api: ApiClient, identity: str, prefix: str, count: int) -> str:
    lines = "\n".join(
        json.dumps({"custom_id": f"{prefix}-{n}", "patient_id": "pt-lanes", "report_text": TEXT})
        for n in range(count)
    )
    response = api.post(
        "/batches", data=lines, headers={"Content-Type": "application/x-ndjson"}, identity=identity
    )
    assert response.status_code == 202, response.text
    return str(response.json()["batch_id"])


def _counts(api: ApiClient, identity: str, batch_id: str) -> dict[str, Any]:
    batch = api.get(f"/batches/{batch_id}", identity=identity).json()
    return {"status": batch["status"], **batch["request_counts"]}


def test_a_big_batch_delays_neither_a_single_report_nor_a_later_small_batch(api: ApiClient) -> None:
    # Given clinic-a's big batch, submitted first
    big = _batch(api, "clinic-a", "big", BIG)
    try:
        # When clinic-b then submits a single report and a small batch
        single = api.post(
            "/summarize", json={"patient_id": "pt-lanes", "report_text": TEXT}, identity="clinic-b"
        )
        assert single.status_code == 202, single.text
        report_id = single.json()["report_id"]
        small = _batch(api, "clinic-b", "small", 5)
        single_done: dict[str, Any] | None = None
        small_done: dict[str, Any] | None = None
        deadline = time.monotonic() + 180
        while (single_done is None or small_done is None) and time.monotonic() < deadline:
            if single_done is None:
                status = api.get(f"/reports/{report_id}", identity="clinic-b").json()["status"]
                if status == "COMPLETED":
                    single_done = _counts(api, "clinic-a", big)
            if small_done is None and _counts(api, "clinic-b", small)["status"] == "completed":
                small_done = _counts(api, "clinic-a", big)
            time.sleep(0.2)
        # Then both finished while most of the big batch was still waiting its turn
        assert single_done is not None and small_done is not None, "clinic-b's work did not finish"
        assert single_done["completed"] < BIG // 2, single_done
        assert small_done["completed"] < BIG // 2, small_done
    finally:
        # (leave the stack quiet for the next test: cancel the rest of the big batch and let it settle)
        api.post(f"/batches/{big}/cancel", identity="clinic-a")
        deadline = time.monotonic() + 300
        settled = ("cancelled", "completed")
        while _counts(api, "clinic-a", big)["status"] not in settled and time.monotonic() < deadline:
            time.sleep(1)
