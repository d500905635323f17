"""One clear line for a failed S3 request: unreachable endpoint, credentials, bucket, key, or the server's code."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

from realfake.core.errors import UserError
from realfake.ingest.s3_location import S3Location


@contextlib.contextmanager
def s3_errors(loc: S3Location, client) -> Iterator[None]:
    """Turn botocore's exceptions into one clear line that says what to fix."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise UserError(explain(exc, loc, client)) from exc


def explain(exc: Exception, loc: S3Location, client) -> str:
    """One line for a failed S3 request: unreachable endpoint, credentials, bucket, key, or the server's code."""
    from botocore import exceptions as bx

    endpoint = client.meta.endpoint_url
    if isinstance(exc, bx.NoCredentialsError | bx.PartialCredentialsError):
        return (f"{loc}: no S3 credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE "
                "with ~/.aws/credentials")
    if isinstance(exc, bx.ConnectionError | bx.ReadTimeoutError | bx.ConnectionClosedError):
        return (f"{loc}: cannot reach the S3 endpoint {endpoint} ({_reason(exc)}); check AWS_ENDPOINT_URL and "
                "that the server is up")
    if isinstance(exc, bx.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "?"), error.get("Message", "")
        if code == "PreconditionFailed":
            return f"{loc}: the object changed while it was being downloaded; run again"
        if code.isdigit():
            code, message = _diagnose(client, loc) or (code, message)  # HEAD answers carry no error body
        key_id = _access_key(client)
        hints = {
            "NoSuchBucket": f"bucket {loc.bucket!r} does not exist at {endpoint}",
            "NoSuchKey": f"no such object at {endpoint}",
            "InvalidAccessKeyId": f"the S3 endpoint {endpoint} does not know access key {key_id!r}: "
                                  "check AWS_ACCESS_KEY_ID",
            "SignatureDoesNotMatch": f"wrong secret key for access key {key_id!r} at {endpoint}: "
                                     "check AWS_SECRET_ACCESS_KEY",
            "AccessDenied": f"access denied to key {key_id!r} at {endpoint}: check the credentials and the "
                            "bucket policy",
            "403": f"access denied (HTTP 403) at {endpoint}: check the credentials and the bucket policy",
            "PermanentRedirect": f"the bucket lives in another region: set AWS_DEFAULT_REGION ({message})",
        }
        return f"{loc}: {hints.get(code) or f'S3 error {code} at {endpoint}: {message}'}"
    return f"{loc}: S3 request failed at {endpoint}: {exc}"


def _reason(exc: Exception) -> str:
    """The OS-level cause of a connection failure (`[Errno 111] Connection refused`), else the error's kind."""
    cause = str(getattr(exc, "kwargs", {}).get("error", "")) or str(exc)
    found = re.search(r"\[Errno -?\d+\][^)'\"]*", cause)
    return found.group(0).strip() if found else type(exc).__name__


def _diagnose(client, loc: S3Location) -> tuple[str, str] | None:
    """A body-carrying request to learn the real error code behind a bare HEAD status."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.list_objects_v2(Bucket=loc.bucket, Prefix=loc.key, MaxKeys=1)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return error.get("Code", "?"), error.get("Message", "")
    except BotoCoreError:
        return None
    return None


def _access_key(client) -> str:
    """The access key id the client signs with (public; the secret is never shown)."""
    # botocore exposes no public accessor on a client; the signer holds the resolved credentials
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    return getattr(credentials, "access_key", None) or "?"
