"""What a user sees: tables that keep ids whole at 80 columns and turn into tab-separated text when piped,
human output for webhook commands (JSON only with ``--json``), and help for every command.

The fake HTTP transport of ``tests/support/cli.py`` (no sockets).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest
from medsum_cli.main import build_parser

from tests.support.cli import Run, fake_session, ok

pytestmark = [pytest.mark.disable_socket, pytest.mark.usefixtures("isolated_env")]


REPORT_IDS = ["01JDQ3Z6W5Y7K8M9N0P1Q2R3S4", "01JDQ3Z6W5Y7K8M9N0P1Q2R3S5"]
BATCH_ID = "01JDQBATCH0000000000000001"
OWNER = "arn:aws:iam::123456789012:assumed-role/clinic-a-uploader-role"


def report_item(report_id: str) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "patient_id": "pt-001",
        "report_type": "progress_note",
        "status": "COMPLETED",
        "created_at": "2026-11-26T06:00:00.123456+00:00",
        "updated_at": "2026-11-26T06:00:09.123456+00:00",
        "links": {"self": "x"},
    }


def batch_item() -> dict[str, Any]:
    return {
        "batch_id": BATCH_ID,
        "status": "in_progress",
        "request_counts": {"total": 1000, "pending": 497, "processing": 0, "completed": 500, "failed": 3},
        "created_at": "2026-11-26T06:00:00.123456Z",
        "completed_at": None,
    }


def dead_letter() -> dict[str, Any]:
    return {
        "report_id": REPORT_IDS[0],
        "error_code": "dead_lettered",
        "owner": OWNER,
        "batch_id": BATCH_ID,
        "attempts": 5,
        "last_failed_at": "2026-11-26T06:00:00.123456+00:00",
        "age_seconds": 7200,
    }


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """An 80-column terminal."""
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    monkeypatch.setenv("COLUMNS", "80")


LISTINGS = [
    (["list", "--patient-id", "pt-001"], {"items": [report_item(i) for i in REPORT_IDS]}, REPORT_IDS),
    (["batch", "list"], {"items": [batch_item()]}, [BATCH_ID]),
    (["dlq", "list", "--identity", "operator"], {"items": [dead_letter()]}, [REPORT_IDS[0], BATCH_ID]),
]


@pytest.mark.parametrize(("argv", "page", "ids"), LISTINGS)
def test_tables_fit_80_columns_and_never_cut_an_id(
    project: Path, run: Run, terminal: None, argv: list[str], page: dict[str, Any], ids: list[str]
) -> None:
    # Given an 80-column terminal
    session, _ = fake_session(ok(page))
    # When a listing is shown
    code, out, _ = run([*argv, "--no-color"], session)
    # Then no line is wider than the terminal, every id is whole on one line, and there are no box lines
    assert code == 0
    lines = re.sub(r"\x1b\[[0-9;]*m", "", out).splitlines()
    assert max(len(line) for line in lines) <= 80, out
    for report_id in ids:
        assert any(report_id in line for line in lines)
    assert not set("┃│┏━─") & set(out)


@pytest.mark.parametrize(("argv", "page", "ids"), LISTINGS)
def test_piped_tables_are_tab_separated_with_one_line_per_row(
    project: Path, run: Run, argv: list[str], page: dict[str, Any], ids: list[str]
) -> None:
    # Given stdout is not a terminal (captured, as when piped)
    session, _ = fake_session(ok(page))
    # When a listing is shown
    code, out, _ = run(argv, session)
    # Then there is a header line, then one line per row, cells separated by tabs, ids first
    assert code == 0
    header, *rows = out.splitlines()
    assert len(rows) == len(page["items"])
    width = len(header.split("\t"))
    assert width > 2 and all(len(row.split("\t")) == width for row in rows)
    assert [row.split("\t")[0] for row in rows] == [i for i in ids if i != BATCH_ID or argv[0] == "batch"]
    assert "\x1b[" not in out


def test_piped_batch_list_does_not_collapse(project: Path, run: Run) -> None:
    session, _ = fake_session(ok({"items": [batch_item()]}))
    _, out, _ = run(["batch", "list"], session)
    assert out.splitlines() == [
        "batch id\tstatus\titems\tdone\tfailed\tcreated\tcompleted",
        f"{BATCH_ID}\tin_progress\t1000\t503\t3\t2026-11-26T06:00:00.123456Z\t",
    ]


WEBHOOK: dict[str, Any] = {
    "webhook_id": "wh_01JDQ3Z6W5Y7K8M9N0P1Q2R3S4",
    "url": "https://example.org/hooks/medsum",
    "event_types": ["report.completed", "report.failed"],
    "status": "enabled",
    "created_at": "2026-11-26T06:00:00+00:00",
    "updated_at": "2026-11-26T06:00:00+00:00",
}
DELIVERY = {
    "delivery_id": "dl_01JDQ3Z6W5Y7K8M9N0P1Q2R3S4",
    "event_id": "evt_x_completed",
    "event_type": "report.completed",
    "webhook_id": WEBHOOK["webhook_id"],
    "url": WEBHOOK["url"],
    "attempt": 2,
    "attempted_at": "2026-11-26T06:00:05+00:00",
    "status_code": 503,
    "latency_ms": 40,
    "outcome": "retrying",
}


@pytest.mark.parametrize(
    ("argv", "reply", "expected"),
    [
        (["webhooks", "list"], {"items": [WEBHOOK]}, [WEBHOOK["webhook_id"], "enabled", WEBHOOK["url"]]),
        (
            ["webhooks", "deliveries", REPORT_IDS[0]],
            {"items": [DELIVERY]},
            [DELIVERY["delivery_id"], "retrying"],
        ),
        (
            ["webhooks", "replay", DELIVERY["delivery_id"]],
            {"delivery_id": DELIVERY["delivery_id"], "status": "queued"},
            [f"delivery {DELIVERY['delivery_id']} queued"],
        ),
    ],
)
def test_webhook_commands_print_for_humans_and_json_only_with_json(
    project: Path, run: Run, argv: list[str], reply: dict[str, Any], expected: list[str]
) -> None:
    # When a webhook command runs without --json
    session, _ = fake_session(ok(reply))
    code, out, _ = run(argv, session)
    # Then it prints words and a table, not JSON
    assert code == 0
    assert all(value in out for value in expected)
    with pytest.raises(json.JSONDecodeError):
        json.loads(out)
    # And with --json it prints the API's JSON unchanged
    session, _ = fake_session(ok(reply))
    code, out, _ = run([*argv, "--json"], session)
    assert code == 0 and json.loads(out) == reply


def test_webhooks_create_prints_the_secret_alone_on_stdout(project: Path, run: Run) -> None:
    # Given the API creates the endpoint
    session, _ = fake_session(ok({**WEBHOOK, "secret": "whsec_c2VjcmV0"}, 201))
    # When it is created without --json
    code, out, err = run(["webhooks", "create", WEBHOOK["url"]], session)
    # Then `secret=$(medsum webhooks create URL)` gets just the secret; the rest is on stderr
    assert code == 0 and out == "whsec_c2VjcmV0\n"
    assert WEBHOOK["webhook_id"] in err and "shown once" in err


def commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> list[tuple[str, str | None, str | None]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((" ".join((*path, name)), helps.get(name), sub.description))
                found.extend(commands(sub, (*path, name)))
    return found


def test_every_command_and_subcommand_has_a_help_line_and_a_description() -> None:
    found = commands(build_parser())
    assert len(found) > 20
    missing = [name for name, help_, description in found if not help_ or not description]
    assert missing == []
