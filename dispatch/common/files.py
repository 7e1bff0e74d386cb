"""What an uploaded file really is: magic-byte sniffing and a safe look inside images.

Shared by closeout (evidence photos) and intake (customers' attachments), so both accept and
refuse exactly the same files.
"""
from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import datetime

# Any phone camera stays far below this; a "photo" claiming more pixels is a decompression bomb.
MAX_IMAGE_PIXELS = 50_000_000

HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


@dataclass(frozen=True)
class SniffedType:
    content_type: str
    extension: str
    is_raster: bool  # decodable by Pillow (dimensions, EXIF)


class UnreadableImage(ValueError):
    """Bytes that claim to be an image but that Pillow cannot (or must not) decode."""


def sniff(head: bytes) -> SniffedType | None:
    """The real type of a file from its magic bytes, or None when it is not one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return SniffedType("image/jpeg", "jpg", True)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return SniffedType("image/png", "png", True)
    if len(head) >= 12 and head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return SniffedType("image/webp", "webp", True)
    if len(head) >= 12 and head[4:8] == b"ftyp" and head[8:12] in HEIF_BRANDS:
        return SniffedType("image/heic", "heic", False)
    if head.startswith(b"%PDF-"):
        return SniffedType("application/pdf", "pdf", False)
    return None


def raster_facts(data: bytes) -> dict:
    """Width, height and the camera's capture time of an image Pillow decodes; UnreadableImage
    for anything else, including an image with more pixels than MAX_IMAGE_PIXELS."""
    from PIL import Image, UnidentifiedImageError

    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; both are refused here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS
        try:
            with Image.open(io.BytesIO(data)) as image:
                width, height = image.size
                taken = image.getexif().get_ifd(0x8769).get(36867)  # Exif IFD, DateTimeOriginal
            with Image.open(io.BytesIO(data)) as image:
                image.verify()  # a JPEG header on a script is not a photo
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
                Image.DecompressionBombWarning) as exc:
            raise UnreadableImage(str(exc)[:200]) from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit
    facts: dict = {"width": width, "height": height}
    if isinstance(taken, str):
        try:
            facts["exif_taken_at"] = datetime.strptime(taken.strip(), "%Y:%m:%d %H:%M:%S").isoformat()
        except ValueError:
            pass
    return facts
