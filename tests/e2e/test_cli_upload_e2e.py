"""``medsum batch submit`` on the local stack takes the upload path by itself for an input over one
inline request (1,000 items, or 5,000,000 bytes): one batch, one id, followed from ``validating`` to
``completed``.

The input here is over the byte limit (60 long reports), not the item limit: a thousand-plus items would
keep the shared e2e stack busy for minutes and starve the other tests. The item-limit choice is unit
tested (``tests/unit/test_cli_batch_upload.py``), and ``bench/batch_cli_local.py`` runs 1,000- and
1,500-item files through the CLI on a stack of their own (timings in BENCHMARKS.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from medsum_local.testing import ApiClient, run_cli


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
    submitted = run_cli(stack_dir, "batch", "submit", str(source), "--wait", timeout=150)

    # Then it was uploaded as ONE batch, whose every item completed, results joined on custom_id
    assert submitted.returncode == 0, submitted.stderr
    [batch_id] = submitted.stdout.split()
    assert f"uploaded batch {batch_id} (60 items)" in submitted.stderr
    assert f"batch {batch_id} completed: 60 completed;" in submitted.stderr
    out = tmp_path / "out.jsonl"
    fetched = run_cli(stack_dir, "batch", "results", batch_id, "-o", str(out), timeout=60)
    assert fetched.returncode == 0, fetched.stderr
    results = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert sorted(result["custom_id"] for result in results) == custom_ids
    assert {result["status"] for result in results} == {"COMPLETED"}
