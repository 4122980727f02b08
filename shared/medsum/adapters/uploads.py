"""S3 implementation of ``UploadStore`` for the ``UploadsBucket``.

Uploads are written by callers through presigned PUT URLs (SSE-KMS with the stack's data key, which
the URL's signed headers require) and read back by the ingestion tasks as a stream, one line at a
time, pinned to the ETag that was planned (``IfMatch``), so a file replaced mid-ingestion is noticed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from medsum.adapters.clients import client as default_client
from medsum.errors import IngestRetryableError, UploadNotFoundError
from medsum.ports import UploadObject, UploadStore

_MISSING = {"404", "NoSuchKey", "NotFound", "412", "PreconditionFailed"}


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
