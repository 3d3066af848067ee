"""Image uploads: never store what a user sent. Decode with Pillow, check, and re-encode to a
fresh WebP, which drops EXIF/XMP metadata and any payload hidden after the image data."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from servicekit.problems import Problem

ALLOWED_FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}
MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 4096


@dataclass(frozen=True)
class EncodedImage:
    data: bytes
    content_type: str
    extension: str
    width: int
    height: int


def reencode_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_side: int = MAX_SIDE,
                   fit_within: tuple[int, int] | None = None) -> EncodedImage:
    """413 too many bytes, 415 not an allowed image type, 422 corrupt or too many pixels."""
    if len(data) > max_bytes:
        raise Problem(413, f"The image is larger than {max_bytes // (1024 * 1024)} MiB.")
    if not data:
        raise Problem(422, "The file is empty.")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            probe = Image.open(io.BytesIO(data))
        except UnidentifiedImageError:
            raise Problem(415, "Only JPEG, PNG, WebP or GIF images are accepted.") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Problem(422, "The image has too many pixels.") from None
        if probe.format not in ALLOWED_FORMATS:
            raise Problem(415, "Only JPEG, PNG, WebP or GIF images are accepted.")
        if probe.width > max_side or probe.height > max_side:
            raise Problem(422, f"The image is larger than {max_side}x{max_side} pixels.")
        try:
            probe.verify()  # structural check; the object is unusable afterwards
            image: Image.Image = Image.open(io.BytesIO(data))
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise Problem(422, "The image has too many pixels.") from None
        except Exception:
            raise Problem(422, "The image is corrupt or truncated.") from None

    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF asked for, then drop EXIF
    image = image.convert("RGBA" if image.mode in ("RGBA", "LA", "P", "PA") else "RGB")
    if fit_within:
        image.thumbnail(fit_within, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="WEBP", quality=85, method=4)
    return EncodedImage(out.getvalue(), "image/webp", "webp", image.width, image.height)


# decoding a 4096x4096 image takes tens of MB and a noticeable fraction of a second: a few at a
# time, off the event loop, so an upload burst neither stalls other requests nor exhausts memory
_REENCODE_SLOTS = None


async def reencode_upload(data: bytes, *, field: str = "file", **options) -> EncodedImage:
    """`reencode_image` in a worker thread; a 422 names the form field at fault (API.md)."""
    global _REENCODE_SLOTS
    import anyio

    if _REENCODE_SLOTS is None:
        _REENCODE_SLOTS = anyio.CapacityLimiter(2)
    try:
        return await anyio.to_thread.run_sync(lambda: reencode_image(data, **options),
                                              limiter=_REENCODE_SLOTS)
    except Problem as problem:
        if problem.status == 422 and problem.errors is None:
            problem.errors = [{"field": field, "message": problem.detail, "type": "value_error"}]
        raise
