"""S3 implementation of ``UploadStore`` for the ``UploadsBucket`` (batch files in and out).

Uploads are written by callers through presigned PUT URLs (SSE-KMS with the stack's data key, which
the URL's signed headers require) and read back by the ingestion tasks as a stream, one line at a
time, pinned to the ETag that was planned (``IfMatch``), so a file replaced mid-ingestion is noticed.
Results files of large batches are written under ``results/`` and handed out as presigned GETs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import IngestRetryableError, RepositoryError, UploadNotFoundError
from medsum.ports import UploadObject, UploadStore

_MISSING = {"404", "NoSuchKey", "NotFound", "412", "PreconditionFailed"}
#: Multipart part size for results files (S3's minimum for every part but the last is 5 MiB).
RESULTS_PART_BYTES = 8 * 1024 * 1024


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
        """One ``PutObject`` for a file under one part; a multipart upload of 8 MiB parts above that
        (aborted if anything fails, so no half-written file is ever visible)."""
        buffer, size, upload_id = bytearray(), 0, None
        parts: list[dict[str, Any]] = []
        try:
            for chunk in chunks:
                buffer += chunk
                size += len(chunk)
                if len(buffer) >= RESULTS_PART_BYTES:
                    if upload_id is None:
                        upload_id = self._client.create_multipart_upload(
                            Bucket=self.bucket, Key=key, ContentType="application/x-ndjson", **self._sse()
                        )["UploadId"]
                    parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
                    buffer.clear()
            if upload_id is None:
                self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=bytes(buffer),
                    ContentType="application/x-ndjson",
                    **self._sse(),
                )
                return size
            if buffer:
                parts.append(self._upload_part(key, upload_id, len(parts) + 1, bytes(buffer)))
            self._client.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
            )
            return size
        except (ClientError, BotoCoreError) as exc:
            if upload_id is not None:
                self._abort(key, upload_id)
            raise RepositoryError("results store unavailable") from exc

    def _upload_part(self, key: str, upload_id: str, number: int, body: bytes) -> dict[str, Any]:
        response = self._client.upload_part(
            Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
        )
        return {"ETag": response["ETag"], "PartNumber": number}

    def _abort(self, key: str, upload_id: str) -> None:
        # If this fails too, the bucket's lifecycle rule aborts incomplete uploads after a day.
        with contextlib.suppress(ClientError, BotoCoreError):
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)

    def presign_get(self, key: str, expires_seconds: int) -> str:
        url = self._client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_seconds
        )
        return str(url)

    def head(self, bucket: str, key: str) -> UploadObject:
        try:
            response = self._client.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise UploadNotFoundError("the upload does not exist") from exc
            raise IngestRetryableError("upload store unavailable") from exc
        except BotoCoreError as exc:
            raise IngestRetryableError("upload store unavailable") from exc
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
        except ClientError as exc:
            if exc.response["Error"]["Code"] in _MISSING:
                raise UploadNotFoundError("the upload is gone or changed") from exc
            raise IngestRetryableError("upload store unavailable") from exc
        except BotoCoreError as exc:
            raise IngestRetryableError("upload store unavailable") from exc
        body = response["Body"]
        try:
            # iter_lines splits on b"\n" only (JSON allows U+2028 inside strings), dropping the "\n"
            # but keeping empty lines, so line numbers stay exact.
            yield from _split_lines(body.iter_chunks(chunk_size=1 << 16))
        except (BotoCoreError, OSError) as exc:
            raise IngestRetryableError("upload stream interrupted") from exc
        finally:
            body.close()


def _split_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Split a byte stream on ``\\n`` only; a final line without a newline is yielded too."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        *lines, pending = pending.split(b"\n")
        yield from lines
    if pending:
        yield pending
