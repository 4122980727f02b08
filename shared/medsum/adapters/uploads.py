"""S3 implementation of ``UploadStore`` for the ``UploadsBucket`` (batch files in and out).

Uploads are written by callers through presigned PUT URLs (SSE-KMS with the stack's data key, which
the URL's signed headers require) and read back by the ingestion tasks as a stream, one line at a
time, pinned to the ETag that was planned (``IfMatch``), so a file replaced mid-ingestion is noticed.
Results files of large batches are written under ``results/`` and handed out as presigned GETs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import IngestRetryableError, MedsumError, RepositoryError, UploadNotFoundError
from medsum.ports import UploadObject, UploadStore

if TYPE_CHECKING:
    from boto3.s3.transfer import TransferConfig

_MISSING = {"404", "NoSuchKey", "NotFound", "412", "PreconditionFailed"}
#: Multipart part size for results files (S3's minimum for every part but the last is 5 MiB); a file
#: under one part is a single ``PutObject``.
RESULTS_PART_BYTES = 8 * 1024 * 1024
#: Parts held in memory at once (read ahead while earlier parts upload): bounds the memory a results
#: file takes to 4 x 8 MiB, whatever its size.
RESULTS_PARTS_IN_MEMORY = 4


@cache
def _results_transfer() -> TransferConfig:
    """The managed transfer's settings for results files. Imported on first use: only the results
    route needs it (the S3 client loads it anyway when it is created)."""
    from boto3.s3.transfer import TransferConfig

    config = TransferConfig(
        multipart_threshold=RESULTS_PART_BYTES,
        multipart_chunksize=RESULTS_PART_BYTES,
        max_concurrency=RESULTS_PARTS_IN_MEMORY,
    )
    # s3transfer's own setting (boto3's subclass does not take it as an argument): how many parts read
    # from a stream may wait in memory for their upload.
    config.max_in_memory_upload_chunks = RESULTS_PARTS_IN_MEMORY
    return config


class _ChunkStream(io.RawIOBase):
    """A read-only file over an iterable of byte chunks (what a managed transfer reads), counting
    the bytes it hands out."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._pending = memoryview(b"")
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        self.size += count
        return count


class S3UploadStore(UploadStore):
    """Parameters
    ----------
    bucket:
        The uploads bucket (``UPLOADS_BUCKET_NAME``).
    kms_key_id:
        The key uploads are encrypted with; presigned PUTs must send it.
    """

    def __init__(self, bucket: str, kms_key_id: str, s3_client: Any | None = None) -> None:
        self.bucket = bucket
        self._kms_key_id = kms_key_id
        self._client = s3_client or default_client("s3")

    def presign_put(self, key: str, expires_seconds: int) -> tuple[str, dict[str, str]]:
        headers = {
            "Content-Type": "application/x-ndjson",
            "x-amz-server-side-encryption": "aws:kms",
            "x-amz-server-side-encryption-aws-kms-key-id": self._kms_key_id,
        }
        url = self._client.generate_presigned_url(
            "put_object",
            Params={
                "Bucket": self.bucket,
                "Key": key,
                "ContentType": headers["Content-Type"],
                "ServerSideEncryption": "aws:kms",
                "SSEKMSKeyId": self._kms_key_id,
            },
            ExpiresIn=expires_seconds,
            HttpMethod="PUT",
        )
        return str(url), headers

    def _sse(self) -> dict[str, str]:
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self._kms_key_id}

    def put_results(self, key: str, chunks: Iterable[bytes]) -> int:
        """Stream ``chunks`` to ``key`` with boto3's managed transfer: one ``PutObject`` for a file under
        one part, a multipart upload of 8 MiB parts above that (aborted by the transfer manager if
        anything fails, so no half-written file is ever visible). An error raised by ``chunks`` itself
        propagates unchanged."""
        stream = _ChunkStream(chunks)
        try:
            self._client.upload_fileobj(
                io.BufferedReader(stream, buffer_size=1 << 16),
                self.bucket,
                key,
                ExtraArgs={"ContentType": "application/x-ndjson", **self._sse()},
                Config=_results_transfer(),
            )
        except (ClientError, BotoCoreError) as exc:
            raise RepositoryError("results store unavailable") from exc
        return stream.size

    def presign_get(self, key: str, expires_seconds: int) -> str:
        url = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return str(url)

    def head(self, bucket: str, key: str) -> UploadObject:
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            raise _read_failure(exc, "the upload does not exist") from exc
        return UploadObject(
            bucket=bucket, key=key, etag=str(response["ETag"]), size=int(response["ContentLength"])
        )

    def read_lines(
        self, upload: UploadObject, start_byte: int = 0, end_byte: int | None = None
    ) -> Iterator[bytes]:
        end = upload.size if end_byte is None else min(end_byte, upload.size)
        if end <= start_byte:
            return
        try:
            response = self._client.get_object(
                Bucket=upload.bucket,
                Key=upload.key,
                IfMatch=upload.etag,
                Range=f"bytes={start_byte}-{end - 1}",
            )
        except (ClientError, BotoCoreError) as exc:
            raise _read_failure(exc, "the upload is gone or changed") from exc
        body = response["Body"]
        try:
            # iter_lines splits on b"\n" only (JSON allows U+2028 inside strings), dropping the "\n"
            # but keeping empty lines, so line numbers stay exact.
            yield from _split_lines(body.iter_chunks(chunk_size=1 << 16))
        except (BotoCoreError, OSError) as exc:
            raise IngestRetryableError("upload stream interrupted") from exc
        finally:
            body.close()


def _read_failure(exc: ClientError | BotoCoreError, missing: str) -> MedsumError:
    """The domain error for a read of an upload that failed: ``UploadNotFoundError(missing)`` when the
    object is not there (or not the planned version), else ``IngestRetryableError``."""
    if isinstance(exc, ClientError) and exc.response["Error"]["Code"] in _MISSING:
        return UploadNotFoundError(missing)
    return IngestRetryableError("upload store unavailable")


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream on ``\\n`` only; a final line without a newline is yielded too."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending
