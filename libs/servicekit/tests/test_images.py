"""reencode_image: only re-encoded WebP leaves, with no metadata; everything else is a precise problem."""

from __future__ import annotations

import io
import random
import struct
import zlib

import pytest
from PIL import Image
from servicekit.images import reencode_image
from servicekit.problems import Problem

ORIENTATION = 0x0112
MAKE = 0x010F
GPS_IFD = 0x8825


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def noise(width: int, height: int, mode: str = "RGB") -> Image.Image:
    rnd = random.Random(42)
    channels = len(mode)
    return Image.frombytes(mode, (width, height), bytes(rnd.getrandbits(8) for _ in range(width * height * channels)))


def png_header_only(width: int, height: int) -> bytes:
    """A syntactically valid PNG start declaring huge dimensions (the classic decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit greyscale
    idat = zlib.compress(b"\x00" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def problem(data: bytes, **kwargs) -> Problem:
    with pytest.raises(Problem) as info:
        reencode_image(data, **kwargs)
    return info.value


def problem_status(data: bytes, **kwargs) -> int:
    return problem(data, **kwargs).status


def test_jpeg_with_exif_becomes_webp_without_exif():
    exif = Image.Exif()
    exif[MAKE] = "SpyCam 3000"
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display"
    exif.get_ifd(GPS_IFD)[2] = (48.0, 51.0, 24.0)
    source = encode(noise(40, 20), "JPEG", exif=exif.tobytes(), quality=90)
    assert b"SpyCam 3000" in source
    with Image.open(io.BytesIO(source)) as check:
        assert check.getexif()[MAKE] == "SpyCam 3000"

    result = reencode_image(source + b"<script>alert(1)</script>")  # trailing payload too

    assert result.content_type == "image/webp"
    assert result.extension == "webp"
    assert result.data[:4] == b"RIFF" and result.data[8:12] == b"WEBP"
    assert b"SpyCam" not in result.data
    assert b"<script>" not in result.data
    with Image.open(io.BytesIO(result.data)) as out:
        assert out.format == "WEBP"
        assert "exif" not in out.info and "xmp" not in out.info
        assert len(out.getexif()) == 0
        # the orientation EXIF asked for is applied before EXIF is dropped
        assert out.size == (20, 40) == (result.width, result.height)


@pytest.mark.parametrize("fmt,mode", [("PNG", "RGB"), ("GIF", "P"), ("WEBP", "RGB"), ("PNG", "L")])
def test_allowed_formats_are_reencoded(fmt, mode):
    image = noise(30, 10, "RGB").convert(mode)
    result = reencode_image(encode(image, fmt))
    assert (result.width, result.height) == (30, 10)
    with Image.open(io.BytesIO(result.data)) as out:
        assert out.format == "WEBP"


def test_transparency_survives():
    image = noise(30, 10, "RGB").convert("RGBA")
    image.putalpha(Image.linear_gradient("L").resize((30, 10)))
    image.putpixel((0, 0), (255, 0, 0, 0))
    result = reencode_image(encode(image, "PNG"))
    with Image.open(io.BytesIO(result.data)) as out:
        assert out.mode == "RGBA"
        assert out.getpixel((0, 0))[3] < 10


def test_over_max_bytes_is_413():
    data = encode(noise(64, 64), "PNG")
    assert problem_status(data, max_bytes=len(data) - 1) == 413
    assert reencode_image(data, max_bytes=len(data)).width == 64


@pytest.mark.parametrize("data", [
    b"hello, I am a text file and not an image\n",
    b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>",
    b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n",
], ids=["text", "svg", "pdf"])
def test_non_images_are_415(data):
    assert problem_status(data) == 415


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "ICO", "PPM"])
def test_images_of_types_not_allowed_are_415(fmt):
    data = encode(noise(16, 16), fmt)
    with Image.open(io.BytesIO(data)) as check:
        assert check.format == fmt  # Pillow reads it: refusing it is our rule, not Pillow's
    assert problem_status(data) == 415


def test_truncated_png_is_422():
    data = encode(noise(200, 200), "PNG")
    refused = problem(data[: len(data) // 2])
    assert refused.status == 422
    assert "corrupt" in refused.detail


def test_truncated_jpeg_is_422():
    data = encode(noise(200, 200), "JPEG")
    assert problem_status(data[: len(data) // 2]) == 422


def test_empty_upload_is_422():
    assert problem_status(b"") == 422


@pytest.mark.parametrize("size", [(4097, 1), (1, 4097)])
def test_more_than_4096_pixels_on_a_side_is_422(size):
    data = encode(Image.new("1", size), "PNG")
    refused = problem(data)
    assert refused.status == 422
    assert "4096x4096" in refused.detail
    ok = reencode_image(encode(Image.new("1", (4096, 1)), "PNG"))
    assert ok.width == 4096


def test_decompression_bomb_is_422_even_when_the_side_limit_would_allow_it():
    bomb = png_header_only(30_000, 30_000)  # 900 Mpx declared in a few hundred bytes
    assert len(bomb) < 1000
    for refused in (problem(bomb, max_side=100_000), problem(bomb)):
        assert refused.status == 422
        assert "too many pixels" in refused.detail


def test_pixel_count_over_pillows_warning_threshold_is_422(monkeypatch):
    # between MAX_IMAGE_PIXELS and twice that Pillow only warns; the warning must refuse too
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(noise(40, 40), "PNG")  # 1600 pixels: warning, not error
    refused = problem(data)
    assert refused.status == 422
    assert "too many pixels" in refused.detail


def test_fit_within_downsizes_keeping_the_aspect_ratio():
    data = encode(noise(800, 400), "PNG")
    result = reencode_image(data, fit_within=(100, 100))
    assert (result.width, result.height) == (100, 50)
    with Image.open(io.BytesIO(result.data)) as out:
        assert out.size == (100, 50)


def test_fit_within_never_upscales():
    result = reencode_image(encode(noise(50, 20), "PNG"), fit_within=(400, 400))
    assert (result.width, result.height) == (50, 20)
