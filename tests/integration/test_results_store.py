"""Results files written by ``S3UploadStore.put_results`` (the template's uploads bucket in moto): every
file is KMS-encrypted JSON Lines whatever its size, and a write that fails leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from medsum.adapters.uploads import RESULTS_PART_BYTES, S3UploadStore
from medsum.errors import RepositoryError
from medsum_local.inprocess import Stack

KEY_ID = "alias/aws/s3"
LINE = b'{"custom_id": "x", "status": "COMPLETED"}\n'


def _store(stack: Stack, bucket: str | None = None) -> S3UploadStore:
    return S3UploadStore(bucket or stack.resources["UploadsBucket"], KEY_ID, stack.client("s3"))


@pytest.mark.parametrize(
    ("size", "parts"),
    [(len(LINE) * 3, None), (RESULTS_PART_BYTES, 1), (RESULTS_PART_BYTES * 2 + 1, 3)],
    ids=["under-one-part", "exactly-one-part", "over-two-parts"],
)
def test_results_files_of_any_size_are_encrypted_ndjson(stack: Stack, size: int, parts: int | None) -> None:
    body = (LINE * (size // len(LINE) + 1))[:size]
    chunks = [body[i : i + 1000] for i in range(0, size, 1000)]
    assert _store(stack).put_results("results/o/b.jsonl", chunks) == size
    stored = stack.client("s3").get_object(Bucket=stack.resources["UploadsBucket"], Key="results/o/b.jsonl")
    assert stored["Body"].read() == body
    assert stored["ContentType"] == "application/x-ndjson"
    assert stored["ServerSideEncryption"] == "aws:kms"
    assert KEY_ID in stored["SSEKMSKeyId"]
    # A file under one part is one PutObject; from one part up, a multipart upload of 8 MiB parts.
    assert stored["ETag"].endswith(f'-{parts}"' if parts else '"') and ("-" in stored["ETag"]) == bool(parts)


def test_a_results_file_whose_lines_fail_midway_is_never_visible(stack: Stack) -> None:
    def lines() -> Iterator[bytes]:
        yield LINE * (RESULTS_PART_BYTES // len(LINE) + 1)  # one part uploaded already
        raise RepositoryError("report store unavailable")

    bucket = stack.resources["UploadsBucket"]
    with pytest.raises(RepositoryError, match="report store unavailable"):
        _store(stack).put_results("results/o/b.jsonl", lines())
    s3 = stack.client("s3")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="results/").get("KeyCount") == 0
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")  # aborted, not left to the lifecycle


def test_a_store_that_cannot_be_written_is_a_repository_error(stack: Stack) -> None:
    with pytest.raises(RepositoryError, match="results store unavailable"):
        _store(stack, bucket="no-such-bucket").put_results("results/o/b.jsonl", [LINE])
