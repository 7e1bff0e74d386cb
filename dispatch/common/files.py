"""What an uploaded file really is: magic-byte sniffing and a safe look inside images.

Shared by closeout (evidence photos) and intake (customers' attachments), so both accept and
refuse exactly the same files.
"""

from __future__ import annotations

import contextlib
import functools
import io
import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

# Any phone camera stays far below this; a "photo" claiming more pixels is a decompression bomb.
MAX_IMAGE_PIXELS = 50_000_000

HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})


@dataclass(frozen=True)
class SniffedType:
    content_type: str
    extension: str
    is_raster: bool  # decodable by Pillow (dimensions, EXIF), HEIC through pillow-heif


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
        return SniffedType("image/heic", "heic", True)
    if head.startswith(b"%PDF-"):
        return SniffedType("application/pdf", "pdf", False)
    return None


@functools.cache
def _pillow():
    """Pillow's Image module, able to open HEIC (what iPhones send) once pillow-heif is registered.
    Only the primary image is decoded: no embedded thumbnails, depth or auxiliary images."""
    from PIL import Image
    from pillow_heif import register_heif_opener

    register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)
    return Image


@contextlib.contextmanager
def _image_guard() -> Iterator:
    """Open and decode images only inside this: more pixels than MAX_IMAGE_PIXELS (a decompression
    bomb) and anything Pillow cannot read both end in UnreadableImage."""
    from PIL import UnidentifiedImageError

    Image = _pillow()
    with warnings.catch_warnings():
        # Pillow only warns between MAX_IMAGE_PIXELS and twice that; both are refused here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        limit, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, MAX_IMAGE_PIXELS
        try:
            yield Image
        except (
            UnidentifiedImageError,
            OSError,
            ValueError,
            SyntaxError,
            Image.DecompressionBombError,
            Image.DecompressionBombWarning,
        ) as exc:
            raise UnreadableImage(str(exc)[:200]) from None
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _degrees(value, ref) -> float | None:
    """Degrees, minutes, seconds (EXIF rationals) and N/S/E/W as signed decimal degrees."""
    try:
        degrees, minutes, seconds = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    decimal = degrees + minutes / 60 + seconds / 3600
    if not math.isfinite(decimal):
        return None
    ref = ref.decode("ascii", "replace") if isinstance(ref, bytes) else str(ref or "")
    return -decimal if ref.strip().upper() in ("S", "W") else decimal


def _gps(exif) -> dict | None:
    """Where the photo was taken, from the EXIF GPS IFD, or None when it says nothing usable."""
    gps = exif.get_ifd(0x8825)  # GPSInfo
    if not gps:
        return None
    lat = _degrees(gps.get(2), gps.get(1))  # GPSLatitude, GPSLatitudeRef
    lng = _degrees(gps.get(4), gps.get(3))  # GPSLongitude, GPSLongitudeRef
    if lat is None or lng is None or not (-90 <= lat <= 90 and -180 <= lng <= 180):
        return None
    return {"lat": round(lat, 6), "lng": round(lng, 6)}


def raster_facts(data: bytes) -> dict:
    """Width, height, the camera's capture time and GPS position of an image Pillow decodes;
    UnreadableImage for anything else, including an image with more pixels than MAX_IMAGE_PIXELS."""
    with _image_guard() as Image:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            exif = image.getexif()
            taken = exif.get_ifd(0x8769).get(36867)  # Exif IFD, DateTimeOriginal
            gps = _gps(exif)
        with Image.open(io.BytesIO(data)) as image:
            image.verify()  # a JPEG header on a script is not a photo
    facts: dict = {"width": width, "height": height}
    if isinstance(taken, str):
        with contextlib.suppress(ValueError):
            facts["exif_taken_at"] = datetime.strptime(taken.strip(), "%Y:%m:%d %H:%M:%S").isoformat()
    if gps is not None:
        facts["gps"] = gps
    return facts


THUMBNAIL_MAX_PX = 480
THUMBNAIL_QUALITY = 80


def raster_thumbnail(data: bytes, *, max_px: int = THUMBNAIL_MAX_PX, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """A JPEG at most `max_px` on its longer side, turned the way the camera's EXIF orientation
    says and without any metadata (no GPS leaves in it). Decoding the whole image also catches a
    file whose header is fine but whose pixels are not; UnreadableImage then, as for raster_facts."""
    from PIL import ImageOps

    with _image_guard() as Image, Image.open(io.BytesIO(data)) as image:
        # A JPEG is decoded at a reduced scale straight away: a 12-megapixel photo never needs
        # its full size in memory for a 480-pixel thumbnail.
        image.draft("RGB", (max_px, max_px))
        image = ImageOps.exif_transpose(image)
        if image.mode in ("RGBA", "LA", "P", "PA"):
            image = image.convert("RGBA")
            flat = Image.new("RGB", image.size, (255, 255, 255))
            flat.paste(image, mask=image.getchannel("A"))
            image = flat
        elif image.mode != "RGB":
            image = image.convert("RGB")
        image.thumbnail((max_px, max_px))
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=quality, optimize=True)
    return out.getvalue()


def trailing_bytes(data: bytes, sniffed: SniffedType) -> int | None:
    """How many bytes follow the end of the file's own structure (the JPEG's end-of-image marker,
    the PNG's IEND chunk, the RIFF or ISO-BMFF boxes, the PDF's last %%EOF), or None when the
    structure cannot be walked to an end. Anything behind the end is a second file riding along
    (HTML, a ZIP): a polyglot that a browser or an unzip tool would read as that other file."""
    walk = _STRUCTURE_ENDS.get(sniffed.content_type)
    if walk is None:
        return None
    try:
        end = walk(data)
    except (IndexError, ValueError):
        return None
    return None if end is None or end > len(data) else len(data) - end


def _jpeg_end(data: bytes) -> int | None:
    pos = 2  # after SOI
    while pos < len(data):
        if data[pos] != 0xFF:
            return None
        while data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        marker = data[pos + 1]
        if marker == 0xD9:  # EOI
            return pos + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # markers without a length
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # SOS: entropy-coded data runs to the next marker that is not a stuffed 0xFF00 or a restart
            while True:
                pos = data.index(b"\xff", pos)
                following = data[pos + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    pos += 1 if following == 0xFF else 2
                    continue
                break
    return None


def _png_end(data: bytes) -> int | None:
    pos = 8  # after the signature
    while pos + 8 <= len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        pos += 12 + length  # length, type, data, CRC
        if kind == b"IEND":
            return pos
    return None


def _riff_end(data: bytes) -> int:
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)  # chunks are padded to an even length


def _bmff_end(data: bytes) -> int | None:
    pos = 0
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        if size == 1:
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
        elif size == 0:  # the last box runs to the end of the file
            return len(data)
        if size < 8:
            return None
        pos += size
    return pos


def _pdf_end(data: bytes) -> int | None:
    marker = data.rfind(b"%%EOF")
    if marker < 0:
        return None
    end = marker + len(b"%%EOF")
    # Line endings (and the odd trailing NUL padding of some scanners) after the marker are part of it.
    return end + (len(data) - end - len(data[end:].lstrip(b"\r\n\t \x00")))


_STRUCTURE_ENDS = {
    "image/jpeg": _jpeg_end,
    "image/png": _png_end,
    "image/webp": _riff_end,
    "image/heic": _bmff_end,
    "application/pdf": _pdf_end,
}
