"""``medsum batch submit`` on the local stack takes the upload path by itself for an input over one
inline request (1,000 items, or 5,000,000 bytes): one batch, one id, followed from ``validating`` to
``completed``.

The 1,200-item test is slow on the local stack: moto's SQS scans the whole queue for every message it
sends or receives (``Queue.attributes`` per message), so 1,200 queued items go at ~2-7 items/s
(2 cores). The 5 MB test takes the same automatic path with 60 items, in well under two minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from medsum_local.testing import ApiClient

ITEMS = 1_200


def cli(stack_dir: Path, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "medsum_cli.main", *args],
        cwd=stack_dir,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_items(path: Path, custom_ids: list[str], text: str) -> None:
    path.write_text(
        "".join(
            json.dumps(
                {
                    "custom_id": custom_id,
                    "patient_id": f"pt-{n % 11}",
                    "report_text": f"{text}\nCOMMENT: item {n}.",
                    "report_type": "radiology",
                }
            )
            + "\n"
            for n, custom_id in enumerate(custom_ids)
        ),
        encoding="utf-8",
    )


def test_cli_uploads_an_input_over_5_mb_as_one_batch(stack_dir: Path, api: ApiClient, tmp_path: Path) -> None:
    # Given 60 long reports (~90,000 characters each): few items, but over one inline request's 5 MB
    custom_ids = [f"cli-mb-{n:02d}" for n in range(60)]
    source = tmp_path / "long.jsonl"
    long_text = "FINDINGS: Lungs are clear. No effusion. " * 2_250 + "\nIMPRESSION: Normal."
    write_items(source, custom_ids, long_text)
    assert source.stat().st_size > 5_000_000

    # When it is submitted with --wait, the mode left to auto
    submitted = cli(stack_dir, "batch", "submit", str(source), "--wait", timeout=150)

    # Then it was uploaded as ONE batch, whose every item completed, results joined on custom_id
    assert submitted.returncode == 0, submitted.stderr
    [batch_id] = submitted.stdout.split()
    assert f"uploaded batch {batch_id} (60 items)" in submitted.stderr
    assert f"batch {batch_id} completed: 60 completed;" in submitted.stderr
    out = tmp_path / "out.jsonl"
    fetched = cli(stack_dir, "batch", "results", batch_id, "-o", str(out), timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(result["custom_id"] for result in results) == custom_ids
    assert {result["status"] for result in results} == {"COMPLETED"}


@pytest.mark.timeout(900)
def test_cli_uploads_an_input_over_1000_items_as_one_batch(
    stack_dir: Path, api: ApiClient, tmp_path: Path
) -> None:
    # Given 1,200 short synthetic items (over one inline request, far below one upload)
    custom_ids = [f"cli-up-{n:04d}" for n in range(ITEMS)]
    source = tmp_path / "large.jsonl"
    write_items(source, custom_ids, "FINDINGS: Lungs are clear.\nIMPRESSION: Normal.")

    # When it is submitted with --wait, the mode left to auto
    submitted = cli(stack_dir, "batch", "submit", str(source), "--wait", timeout=840)

    # Then it was uploaded as ONE batch, whose every item completed
    assert submitted.returncode == 0, submitted.stderr
    [batch_id] = submitted.stdout.split()
    assert f"uploaded batch {batch_id} ({ITEMS} items)" in submitted.stderr
    assert f"batch {batch_id} completed: {ITEMS} completed;" in submitted.stderr
    batch = api.get(f"/batches/{batch_id}").json()
    assert (batch["status"], batch["errors"]) == ("completed", [])
    assert batch["request_counts"]["total"] == batch["request_counts"]["completed"] == ITEMS

    # ... and its results are one line per item, joined on custom_id
    out = tmp_path / "out.jsonl"
    fetched = cli(stack_dir, "batch", "results", batch_id, "-o", str(out), timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(results) == ITEMS
    assert sorted(result["custom_id"] for result in results) == custom_ids
    assert {result["status"] for result in results} == {"COMPLETED"}
