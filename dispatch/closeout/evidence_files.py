"""Evidence files and URIs: what the server accepts, how it recognises a file, where it stores it.

A file's type is read from its first bytes, never from its name or the client's content type:
a ".png" that is really text is refused. Stored names are built from the ticket and evidence
ids only, so nothing a client sends ends up in a storage path. The original bytes are stored as
sent; a photo also gets a small JPEG thumbnail beside it, re-encoded by us for the pages.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as EndpointUnreachable
from django.conf import settings
from django.core.cache import cache
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse

from dispatch.common.errors import DispatchError, not_found, retry_after, storage_unavailable
from dispatch.common.files import (
    SniffedType,
    UnreadableImage,
    raster_facts,
    raster_thumbnail,
    sniff,
    trailing_bytes,
)

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
# Uploaded files get a URI naming where they are: the bucket when storage is S3-compatible,
# else the local media store. The gate trusts stored files whatever the URI scheme.
LOCAL_STORAGE_URI_PREFIX = "file://media/"
SHA256_HEX = re.compile(r"^(?:sha256[:=])?([0-9a-fA-F]{64})$")
NOT_SAVED = "The {what} was not saved: the file store cannot be reached right now. Try again in a minute."
NOT_READ = "The file cannot be shown right now: the file store cannot be reached. Try again in a minute."
NOT_STORED = (
    "Nothing was changed: the file store cannot be reached right now to keep the documents. Try again in a minute."
)

logger = logging.getLogger("dispatch.closeout")


def allowed_uri_schemes() -> list[str]:
    schemes = getattr(settings, "DISPATCH_EVIDENCE_URI_SCHEMES", None) or ["s3", "minio"]
    return [s.strip().lower() for s in schemes if s.strip()]


def max_upload_bytes() -> int:
    return int(getattr(settings, "DISPATCH_EVIDENCE_MAX_BYTES", DEFAULT_MAX_BYTES))


def uri_is_object_store(uri: str) -> bool:
    """An object-store URI in an allowed scheme, with a bucket (host) and a non-empty key."""
    try:
        parts = urlsplit(uri.strip())
    except ValueError:
        return False
    return parts.scheme.lower() in allowed_uri_schemes() and bool(parts.netloc.strip()) and parts.path not in ("", "/")


def evidence_uri_check(uri) -> str:
    """The trimmed URI, or a 400 INVALID_EVIDENCE_REFERENCE naming the allowed schemes."""
    if not isinstance(uri, str) or not uri.strip():
        raise DispatchError(
            "INVALID_REQUEST",
            "Field 'uri' must be a non-empty string.",
            status=400,
            dimension="request",
            details={"field": "uri"},
        )
    uri = uri.strip()
    if len(uri) > 1000 or not uri_is_object_store(uri):
        raise DispatchError(
            "INVALID_EVIDENCE_REFERENCE",
            "Evidence URIs must point into object storage: scheme://bucket/key with an allowed scheme.",
            status=400,
            dimension="evidence",
            details={"uri": uri[:200], "allowed_schemes": allowed_uri_schemes()},
        )
    return uri


def _bad_file(message: str, **details) -> DispatchError:
    return DispatchError("INVALID_EVIDENCE_FILE", message, status=400, dimension="evidence", details=details)


def not_an_image(kind: str, content_type: str) -> DispatchError:
    return _bad_file(
        f"A {kind.lower()} must be a picture (JPEG, PNG, WebP or HEIC), not {content_type}.", content_type=content_type
    )


def _image_read(data: bytes) -> tuple[dict, bytes]:
    """Width, height, capture time and GPS position, and the thumbnail; refuses bytes Pillow
    cannot read (or must not decode) as an image."""
    try:
        return raster_facts(data), raster_thumbnail(data)
    except UnreadableImage as exc:
        raise _bad_file("The file looks like an image but cannot be read as one.", reason=str(exc)) from None


@dataclass(frozen=True)
class PreparedUpload:
    data: bytes
    sniffed: SniffedType
    sha256: str
    facts: dict
    original_name: str
    # A JPEG of the photo for the pages (None for documents).
    thumbnail: bytes | None = None


@dataclass(frozen=True)
class StoredUpload:
    """Where an upload was written: the original's storage name and URI, and its thumbnail's."""

    name: str
    uri: str
    thumbnail_name: str = ""

    @property
    def names(self) -> list[str]:
        return [name for name in (self.name, self.thumbnail_name) if name]


def upload_prepare(upload, *, checksum: str | None = None) -> PreparedUpload:
    """Read, size-check, sniff and hash an uploaded file; refuse anything we would not store."""
    limit = max_upload_bytes()
    declared = getattr(upload, "size", None)
    if declared is not None and declared > limit:
        raise _bad_file(f"The file is larger than {limit} bytes.", max_bytes=limit)
    upload.seek(0)
    # Read one byte past the limit: enough to know it is too big without reading it all.
    data = upload.read(limit + 1)
    if len(data) > limit:
        raise _bad_file(f"The file is larger than {limit} bytes.", max_bytes=limit)
    if not data:
        raise _bad_file("The file is empty.")
    sniffed = sniff(data[:32])
    if sniffed is None:
        raise _bad_file(
            "Only JPEG, PNG, WebP, HEIC photos and PDF documents are accepted; this file is none of them.",
            declared_content_type=getattr(upload, "content_type", "") or "",
        )
    trailing = trailing_bytes(data, sniffed)
    if trailing != 0:
        # A photo with HTML or a ZIP behind it is two files in one: stored as evidence, it could be
        # served or unpacked as the other. Refused, so the stored bytes are exactly the photo sent.
        raise _bad_file(
            f"The file is not a well-formed {sniffed.extension.upper()}: "
            + ("its structure has no end." if trailing is None else f"{trailing} bytes follow its end."),
            trailing_bytes=trailing,
        )
    digest = hashlib.sha256(data).hexdigest()
    if checksum:
        match = SHA256_HEX.match(checksum.strip())
        if match and match.group(1).lower() != digest:
            raise DispatchError(
                "EVIDENCE_CHECKSUM_MISMATCH",
                "The file's sha256 does not match the checksum sent with it.",
                status=400,
                dimension="evidence",
                details={"checksum": checksum, "sha256": digest},
            )
    facts, thumbnail = _image_read(data) if sniffed.is_raster else ({}, None)
    return PreparedUpload(
        data=data,
        sniffed=sniffed,
        sha256=digest,
        facts=facts,
        original_name=str(getattr(upload, "name", "") or "")[:200],
        thumbnail=thumbnail,
    )


def storage_unreachable(exc: BaseException) -> bool:
    """Whether a storage call failed because the store is down or out of reach, so the same call
    may work in a minute: no connection, a timeout, a connection dropped mid-answer, an object
    store answering 5xx, a local disk refusing the write (full, read-only, permissions). A file
    that is not there is not one of these."""
    if isinstance(exc, (EndpointUnreachable, HTTPClientError)):  # botocore: connect, read timeouts, closed
        return True
    if isinstance(exc, ClientError):
        return exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
    return isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError)


# The object store's own codes for "no such object" (botocore's ClientError carries them).
NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def storage_missing(exc: BaseException) -> bool:
    """Whether a storage call failed because the file is not there: on disk, or in the bucket."""
    if isinstance(exc, FileNotFoundError):
        return True
    return isinstance(exc, ClientError) and str(exc.response.get("Error", {}).get("Code", "")) in NOT_FOUND_CODES


@contextmanager
def storage_call(message: str) -> Iterator[None]:
    """Storage I/O whose failure to reach the store becomes a 503 STORAGE_UNAVAILABLE with
    `message`. The cause goes to the log only: botocore's messages name the endpoint."""
    try:
        yield
    except Exception as exc:
        if not storage_unreachable(exc):
            raise
        logger.warning("File store unreachable: %s", exc.__class__.__name__, exc_info=True)
        raise storage_unavailable(message) from exc


@contextmanager
def storage_reading() -> Iterator[None]:
    """Reading a stored file back: a store out of reach is a 503 STORAGE_UNAVAILABLE, a file that
    is not there (removed from the bucket by hand, a lost disk) a 404 FILE_MISSING, never a 500."""
    try:
        with storage_call(NOT_READ):
            yield
    except DispatchError:
        raise
    except Exception as exc:
        if storage_missing(exc):
            raise not_found("FILE_MISSING", "The file is not in the file store.") from None
        raise


def upload_store(prepared: PreparedUpload, *, ticket_id, evidence_id, what: str = "file") -> StoredUpload:
    """Save the bytes (unchanged) through Django's default storage, and the thumbnail beside them
    as evidence/<ticket>/<evidence id>.thumb.jpg. A store that cannot be reached is a 503
    STORAGE_UNAVAILABLE ("The <what> was not saved ..."), and nothing of the upload is left behind."""
    original = f"evidence/{ticket_id}/{evidence_id}.{prepared.sniffed.extension}"
    thumbnail = f"evidence/{ticket_id}/{evidence_id}.thumb.jpg" if prepared.thumbnail is not None else ""
    name = thumbnail_name = ""
    try:
        with storage_call(NOT_SAVED.format(what=what)):
            name = default_storage.save(original, ContentFile(prepared.data))
            if thumbnail:
                thumbnail_name = default_storage.save(thumbnail, ContentFile(prepared.thumbnail))
    except BaseException:
        # What was saved goes, and so does the name of the save that failed: it may have left its
        # object (the store kept it and its answer was lost, perhaps on an attempt botocore then
        # retried and could not connect) or part of a file on disk. A store that is down refuses
        # the removal too, and upload_discard names what may be left behind.
        upload_discard(name, thumbnail_name, perhaps=thumbnail if name else original)
        raise
    bucket = getattr(default_storage, "bucket_name", None)
    uri = f"s3://{bucket}/{name}" if bucket else f"{LOCAL_STORAGE_URI_PREFIX}{name}"
    return StoredUpload(name=name, uri=uri, thumbnail_name=thumbnail_name)


def upload_discard(*names: str, perhaps: str = "") -> None:
    """Remove stored files whose evidence row was never committed. `perhaps`: the name whose save
    failed, which the store may or may not hold.

    This runs while another error is on its way out (a refusal, a store that went away), so it
    never raises over it: a removal that fails is logged with the names left behind, and the
    rest are not tried (the store that failed one would keep every request waiting on the next).
    """
    targets = [name for name in (*names, perhaps) if name]
    for index, name in enumerate(targets):
        try:
            # Deleting a name that is not there is no error, on disk or in S3.
            default_storage.delete(name)
        except Exception as exc:
            left = [other for other in targets[index:] if other != perhaps]
            if left:
                logger.error(
                    "Could not remove uploaded files whose evidence was not recorded (%s); not removed: %s%s",
                    exc.__class__.__name__,
                    ", ".join(left),
                    f"; perhaps also {perhaps}" if perhaps in targets[index:] else "",
                )
            else:
                logger.warning(
                    "Could not remove %s, whose save failed (%s): the store may hold it.",
                    perhaps,
                    exc.__class__.__name__,
                )
            return


def evidence_file_response(item) -> FileResponse:
    """An evidence item's stored file, always as a download of its sniffed type: never rendered
    in the browser, never re-typed by it, whatever the bytes hold (nosniff, a sandboxing CSP),
    and never kept by a shared cache (a customer's premises, a signature)."""
    extension = item.file.name.rsplit(".", 1)[-1] if "." in item.file.name else "bin"
    # Opening reaches the store, and so does the response (it sizes the file): both in here.
    with storage_reading():
        response = FileResponse(
            item.file.open("rb"),
            as_attachment=True,
            filename=f"evidence-{item.pk}.{extension}",
            content_type=item.content_type or "application/octet-stream",
        )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response


# A thumbnail made again from the original (see evidence_thumbnail_remade) is kept this long.
THUMBNAIL_CACHE_SECONDS = 7 * 24 * 3600


def _stored_thumbnail_name(item) -> str:
    name = (item.metadata or {}).get("thumbnail") or ""
    # Only ever the name upload_store gave it (evidence_add never takes this key from a client).
    if not isinstance(name, str) or not name.startswith(f"evidence/{item.ticket_id}/{item.pk}.thumb"):
        return ""
    return name


def evidence_thumbnail_remade(item) -> bytes | None:
    """The thumbnail of a picture whose stored one is missing (lost from the bucket, or never
    written), made from the original as upload_prepare makes it (raster_thumbnail: the pixel cap,
    a decompression bomb refused, the EXIF orientation applied) and cached by the file's sha256,
    so the pages decode the photo once, not on every view. None when the item is no picture we
    can read."""
    limit = max_upload_bytes()
    if not item.file or not (item.content_type or "").startswith("image/") or (item.size or 0) > limit:
        return None
    key = f"evidence-thumbnail:{item.pk}:{item.sha256}"
    cached = cache.get(key)
    if cached is not None:
        # b"": the original was read once and is no picture we can shrink; not read again.
        return cached or None
    with storage_reading(), item.file.open("rb") as original:
        data = original.read(limit + 1)
    sniffed = sniff(data[:32])
    thumbnail = b""
    if len(data) <= limit and sniffed is not None and sniffed.is_raster:
        try:
            thumbnail = raster_thumbnail(data)
        except UnreadableImage:
            thumbnail = b""
    cache.set(key, thumbnail, THUMBNAIL_CACHE_SECONDS)
    return thumbnail or None


def evidence_thumbnail_response(item) -> HttpResponse:
    """A photo's thumbnail for the pages, shown inline: a JPEG we encoded ourselves from the
    decoded pixels, so it carries nothing of the uploaded file but the picture (still nosniff and
    a locked-down CSP should it be opened on its own). The stored one, else one made again from
    the original; 404 when the item is no picture."""
    name = _stored_thumbnail_name(item)
    response = None
    if name:
        try:
            with storage_reading():
                response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
        except DispatchError as refusal:
            if refusal.code != "FILE_MISSING":
                raise
    if response is None:
        remade = evidence_thumbnail_remade(item)
        if remade is None:
            raise Http404("This evidence item has no thumbnail.")
        response = HttpResponse(remade, content_type="image/jpeg")
    response["Content-Disposition"] = f'inline; filename="evidence-{item.pk}.thumb.jpg"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, max-age=3600"
    return response


def file_refusal_response(refusal: DispatchError) -> HttpResponse:
    """A file route's answer when it cannot serve the file right now (the store cannot be reached,
    a PDF still rendering): the status and a line of text (an <img> or a download has no page to
    show a message on), with Retry-After when the refusal says when to ask again."""
    response = HttpResponse(refusal.message, status=refusal.status, content_type="text/plain; charset=utf-8")
    if retry_after(refusal) is not None:
        response["Retry-After"] = retry_after(refusal)
    return response
