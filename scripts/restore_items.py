"""Copy items from a table restored with PITR back into the live table (runbook: "Restore the table").

    python scripts/restore_items.py --from medsum-PatientReports-restored --to <live table> [--key report_id]
        [--only ID ...] [--dry-run]

Every item of the restored table (or only the ``--only`` keys) is written to the live table with
``BatchWriteItem`` (unprocessed items retried, never dropped). Items are copied as stored (text stays
compressed, nothing is decoded or printed): only counts are printed. Endpoints and credentials come from
the usual AWS environment (``AWS_ENDPOINT_URL`` for the local stack).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "shared"))

import boto3
from medsum.adapters.retry import retry_unprocessed

CHUNK = 25
ATTEMPTS = 10


def scan(client: Any, table: str) -> Iterator[dict[str, Any]]:
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def write(
    client: Any, table: str, items: list[dict[str, Any]], sleep: Callable[[float], None] = time.sleep
) -> None:
    """``BatchWriteItem`` of up to 25 items; what stays unprocessed after every retry ends the run."""

    def send(pending: dict[str, Any]) -> dict[str, Any]:
        return client.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}

    request = {table: [{"PutRequest": {"Item": item}} for item in items]}
    left = retry_unprocessed(send, request, ATTEMPTS, sleep)
    if left:
        raise SystemExit(f"gave up: {len(left[table])} items still unprocessed after retries")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--from", dest="source", required=True, help="the restored table")
    parser.add_argument("--to", dest="target", required=True, help="the live table")
    parser.add_argument("--key", default="report_id", help="partition key name (default report_id)")
    parser.add_argument("--only", nargs="+", metavar="ID", help="copy only these keys")
    parser.add_argument("--dry-run", action="store_true", help="count, write nothing")
    args = parser.parse_args(argv)
    client = boto3.client("dynamodb")
    wanted = set(args.only or [])
    batch: list[dict[str, Any]] = []
    copied = 0
    unfinished: list[str] = []
    for item in scan(client, args.source):
        if wanted and item[args.key]["S"] not in wanted:
            continue
        if item.get("status", {}).get("S") in ("PENDING", "PROCESSING"):
            unfinished.append(item[args.key]["S"])
        batch.append(item)
        if len(batch) == CHUNK:
            if not args.dry_run:
                write(client, args.target, batch)
            copied += len(batch)
            batch = []
    if batch and not args.dry_run:
        write(client, args.target, batch)
    copied += len(batch)
    print(f"{'would copy' if args.dry_run else 'copied'} {copied} items from {args.source} to {args.target}")
    if unfinished:
        print(f"{len(unfinished)} unfinished (PENDING/PROCESSING); re-send their work messages:")
        for key in unfinished:
            print(key)
    return 0


if __name__ == "__main__":
    sys.exit(main())
