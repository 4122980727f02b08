"""``medsum eval`` through ``main()``: results mode end to end, gates and exit codes, and stack mode on a
fake transport (no sockets). The reports are this file's own small texts, never the dev set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli import Run, fake_session, ok

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env")]


EFFUSION = (
    "FINDINGS: Heart size normal. Small left pleural effusion.\n\nIMPRESSION: Small left pleural effusion."
)
NORMAL = "FINDINGS: Lungs are clear. No pneumothorax.\n\nIMPRESSION: No acute cardiopulmonary abnormality."
PNEUMONIA = "FINDINGS: Right lower lobe consolidation.\n\nIMPRESSION: Right lower lobe pneumonia."
REFERENCES = [
    {"custom_id": "r1", "report_text": EFFUSION, "impression": "Small left pleural effusion."},
    {"custom_id": "r2", "report_text": NORMAL, "impression": "No acute cardiopulmonary abnormality."},
    {"custom_id": "r3", "report_text": PNEUMONIA, "impression": "Right lower lobe pneumonia."},
]


def summary(text: str, *findings: tuple[str, int, int]) -> dict[str, Any]:
    return {
        "summary": text,
        "key_findings": [{"text": t, "evidence": [{"start": s, "end": e}]} for t, s, e in findings],
        "diagnoses": [],
        "medications": [],
        "follow_up": [],
        "model_id": "anthropic.claude-haiku-4-5-20251001-v1:0",
        "prompt_version": "test",
        "verification": {
            "items_checked": len(findings),
            "items_kept": len(findings),
            "needs_review": False,
            "verifier_version": "test",
        },
    }


def result_line(custom_id: str, body: dict[str, Any] | None, status: str = "COMPLETED") -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "report_id": f"rep-{custom_id}",
        "status": status,
        "summary": body,
        "error": None,
    }


# r1: the effusion, found; r2: normal, said normal; r3: the pneumonia, missed (false reassurance)
RESULTS = [
    result_line("r1", summary("Small left pleural effusion.", ("Small left pleural effusion", 29, 56))),
    result_line("r2", summary("No acute abnormality reported.")),
    result_line("r3", summary("No acute abnormality reported.")),
]


def write_jsonl(path: Path, lines: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return write_jsonl(tmp_path / "refs.jsonl", REFERENCES), write_jsonl(tmp_path / "results.jsonl", RESULTS)


@pytest.mark.usefixtures("isolated_env")
def test_results_mode_scores_the_model_next_to_the_baselines(files: tuple[Path, Path], run: Run) -> None:
    references, results = files

    code, out, _err = run(["eval", "--results", str(results), "--references", str(references), "--json"])

    assert code == 0
    report = json.loads(out)
    model = report["systems"]["model"]
    # Positives (No Finding included): r1 effusion TP, r2 No Finding TP, r3 pneumonia FN, r3 No Finding
    # FP -> TP 2, FP 1, FN 1: F1 = 2*2 / (2*2 + 1 + 1)
    assert model["micro_f1"] == pytest.approx(4 / 6)
    assert (model["false_reassurance_reports"], model["reference_abnormal_reports"]) == (1, 2)
    assert report["systems"]["normal sentence"]["false_reassurance"] == 1.0
    # the all-FINDINGS copy states a finding for both ("consolidation" is not "pneumonia", but not normal)
    assert report["systems"]["all FINDINGS"]["false_reassurance"] == 0.0
    assert report["run"]["coverage"] == 1.0
    assert report["run"]["evidence_grounded"] == 1.0
    assert report["run"]["tokens"]["reports_with_usage"] == 0  # plain batch results carry no usage
    assert report["subsets"]["reference_abnormal"]["reports"] == 2


@pytest.mark.usefixtures("isolated_env")
def test_the_terminal_and_markdown_tables_label_rouge_as_gameable(files: tuple[Path, Path], run: Run) -> None:
    references, results = files

    code, out, _ = run(["eval", "--results", str(results), "--references", str(references)])
    md_code, markdown, _ = run(
        ["eval", "--results", str(results), "--references", str(references), "--markdown"]
    )

    assert code == md_code == 0
    for text in (out, markdown):
        assert "ROUGE-L F1 (gameable" in text
        assert "false reassurance" in text
        assert "first FINDINGS sentence" in text
    assert markdown.splitlines()[2].startswith("| metric | medsum | normal sentence")


@pytest.mark.usefixtures("isolated_env")
@pytest.mark.parametrize(
    ("gates", "expected"),
    [
        (["--fail-under", "micro_f1=0.6"], 0),
        (["--fail-under", "micro_f1=0.7"], 5),
        (["--fail-over", "false_reassurance=0.5"], 0),
        (["--fail-over", "false_reassurance=0.4"], 5),
        (["--fail-under", "coverage=1", "--fail-over", "abnormal.false_reassurance=0.1"], 5),
        (["--fail-over", "cost_per_1k=1"], 5),  # not measured: the gate cannot pass
        (["--fail-under", "nonsense=1"], 2),
        (["--fail-under", "micro_f1"], 2),
    ],
)
def test_gates_set_the_exit_code(files: tuple[Path, Path], run: Run, gates: list[str], expected: int) -> None:
    references, results = files

    code, _out, err = run(["eval", "--results", str(results), "--references", str(references), *gates])

    assert code == expected
    if expected == 5:
        assert "gate failed" in err


@pytest.mark.usefixtures("isolated_env")
def test_unreadable_inputs_are_usage_errors(tmp_path: Path, files: tuple[Path, Path], run: Run) -> None:
    references, results = files
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"custom_id": "r1"}\nnot json\n', encoding="utf-8")

    missing = run(["eval", "--results", str(tmp_path / "nope.jsonl"), "--references", str(references)])
    bad_results = run(["eval", "--results", str(broken), "--references", str(references)])
    bad_refs = run(["eval", "--results", str(results), "--references", str(broken)])

    assert missing[0] == bad_results[0] == bad_refs[0] == 2
    assert "no such file" in missing[2]
    assert "broken.jsonl:2: not valid JSON" in bad_results[2]


def report_view(custom_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {
        **result,
        "patient_id": "medsum-eval",
        "report_type": "radiology",
        "created_at": "2026-11-26T06:00:00Z",
        "updated_at": "2026-11-26T06:00:04Z",
        "attempts": 1,
        "usage": {
            "model_id": "us.anthropic.claude-haiku-4-5-20251001-v1:0",
            "input_tokens": 1000,
            "output_tokens": 200,
        },
        "custom_id": custom_id,
        "links": {"self": "x"},
    }


def test_stack_mode_submits_waits_reads_usage_and_saves_results(
    project: Path, run: Run, tmp_path: Path
) -> None:
    # Given the references without their IMPRESSION sections, and a stack that completes the batch
    references = write_jsonl(tmp_path / "refs.jsonl", REFERENCES)
    batch = {
        "batch_id": "B1",
        "status": "completed",
        "request_counts": {"total": 3, "completed": 3},
        "links": {},
    }
    ndjson = "".join(json.dumps(line) + "\n" for line in RESULTS).encode()
    session, adapter = fake_session(
        ok({**batch, "status": "in_progress"}, 202),
        ok(batch),
        ok(ndjson, 200, **{"Content-Type": "application/x-ndjson"}),
        *(ok(report_view(line["custom_id"], line)) for line in RESULTS),
    )
    saved = tmp_path / "saved.jsonl"

    # When
    code, out, _err = run(
        [
            "eval",
            "--references",
            str(references),
            "--without-impression",
            "--save-results",
            str(saved),
            "--json",
        ],
        session,
    )

    # Then the reports went out without their impressions, and usage and timings were read
    assert code == 0
    body = adapter.requests[0].body
    assert isinstance(body, bytes)
    posted = [json.loads(line) for line in body.splitlines()]
    assert [item["custom_id"] for item in posted] == ["r1", "r2", "r3"]
    assert all("IMPRESSION" not in item["report_text"] for item in posted)
    assert [request.path_url for request in adapter.requests[3:]] == [
        "/reports/rep-r1",
        "/reports/rep-r2",
        "/reports/rep-r3",
    ]
    report = json.loads(out)
    # Haiku example price: 1000 in * 0.001 + 200 out * 0.005 = 0.002 per report -> 2.0 per 1,000
    assert report["run"]["cost"]["per_1k_reports"] == pytest.approx(2.0)
    assert report["run"]["latency"]["p50_seconds"] == 4.0
    assert report["run"]["mode"] == "stack" and report["run"]["without_impression"] is True
    # And the saved results score the same offline
    again_code, again, _ = run(
        ["eval", "--results", str(saved), "--references", str(references), "--without-impression", "--json"]
    )
    assert again_code == 0
    assert json.loads(again)["systems"] == report["systems"]
    assert json.loads(again)["run"]["cost"] == report["run"]["cost"]
