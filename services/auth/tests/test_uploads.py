"""POST /api/upload/avatar: re-encoded, metadata-free, size-checked images."""

import io
import struct
import zlib

import httpx
import pytest
from PIL import ExifTags, Image

MiB = 1024 * 1024


def jpeg_with_exif(size=(800, 600), orientation: int | None = None) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    for x in range(size[0] // 2):  # left half differs, so orientation is observable
        for y in range(0, size[1], 50):
            image.putpixel((x, y), (0, 0, 255))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "SpyCam Industries"
    exif[ExifTags.Base.Model] = "Tracker 3000"
    exif[ExifTags.Base.Software] = "secret-software-1.0"
    if orientation:
        exif[ExifTags.Base.Orientation] = orientation
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (52.0, 31.0, 12.0),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (13.0, 24.0, 36.0),
        }
    )
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif, quality=90)
    return out.getvalue()


def png(size=(64, 64), mode="RGBA") -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, (10, 200, 10, 128) if mode == "RGBA" else 0).save(out, format="PNG")
    return out.getvalue()


def upload(client, bearer, user, data: bytes, filename="a.jpg", content_type="image/jpeg", field="file"):
    return client.post(
        "/api/upload/avatar", headers=bearer(user), files={field: (filename, data, content_type)}
    )


def stored_key(url: str, auth_settings) -> str:
    prefix = auth_settings.media_base_url.rstrip("/") + "/"
    assert url.startswith(prefix), url
    return url.removeprefix(prefix)


async def test_jpeg_avatar_is_reencoded_without_metadata(
    client, register, bearer, auth_app, auth_settings, seaweedfs
):
    user = await register("avatar_1")
    original = jpeg_with_exif()
    assert b"SpyCam" in original and Image.open(io.BytesIO(original)).getexif()  # the fixture really has EXIF
    r = await upload(client, bearer, user, original)
    assert r.status_code == 200, r.text
    url = r.json()["url"]
    assert r.json() == {"url": url}
    key = stored_key(url, auth_settings)
    assert key.startswith(f"avatars/{user['user']['id']}/") and key.endswith(".webp")

    stored = await auth_app.state.runtime.store.get(key)
    # what the gateway proxies /media/ to: the bucket, read without a key, with the type kept
    prefix = auth_settings.object_store_url.removeprefix(f"s3://{seaweedfs.bucket}/")
    public = httpx.get(f"{seaweedfs.public_url}/{prefix}/{key}")
    assert public.content == stored and public.headers["content-type"] == "image/webp"
    image = Image.open(io.BytesIO(stored))
    assert image.format == "WEBP"
    assert max(image.size) <= auth_settings.avatar_size_px == 512
    assert image.size == (512, 384)  # aspect ratio kept
    assert not image.getexif()
    assert "exif" not in image.info and "xmp" not in image.info
    for secret in (b"SpyCam", b"Tracker", b"secret-software", b"Exif"):
        assert secret not in stored

    me = (await client.get("/api/auth/user", headers=bearer(user))).json()
    assert me["avatar"] == url
    assert (await client.get(f"/api/users/{user['user']['id']}")).json()["avatar"] == url


async def test_exif_orientation_is_applied_before_it_is_dropped(
    client, register, bearer, auth_app, auth_settings
):
    user = await register("avatar_2")
    r = await upload(client, bearer, user, jpeg_with_exif(size=(600, 300), orientation=6))  # rotate 90°
    assert r.status_code == 200, r.text
    image = Image.open(
        io.BytesIO(await auth_app.state.runtime.store.get(stored_key(r.json()["url"], auth_settings)))
    )
    assert image.size == (256, 512)


async def test_small_images_are_not_enlarged_and_keep_transparency(
    client, register, bearer, auth_app, auth_settings
):
    user = await register("avatar_3")
    r = await upload(client, bearer, user, png((64, 40)), "a.png", "image/png")
    assert r.status_code == 200, r.text
    image = Image.open(
        io.BytesIO(await auth_app.state.runtime.store.get(stored_key(r.json()["url"], auth_settings)))
    )
    assert image.format == "WEBP" and image.size == (64, 40)
    assert image.mode == "RGBA"


async def test_a_new_avatar_gets_a_new_url(client, register, bearer):
    user = await register("avatar_4")
    first = (await upload(client, bearer, user, jpeg_with_exif())).json()["url"]
    second = (await upload(client, bearer, user, png(), "b.png", "image/png")).json()["url"]
    assert first != second
    assert (await client.get("/api/auth/user", headers=bearer(user))).json()["avatar"] == second


async def test_the_declared_content_type_is_not_trusted(client, register, bearer):
    user = await register("avatar_5")
    r = await upload(client, bearer, user, png(), "photo.txt", "text/plain")
    assert r.status_code == 200  # decoded by content, not by name or header
    r = await upload(client, bearer, user, b"<?php system($_GET['c']); ?>", "x.png", "image/png")
    assert r.status_code == 415


async def test_more_than_5_mib_is_413(client, register, bearer, assert_problem):
    user = await register("avatar_6")
    before = (await client.get("/api/auth/user", headers=bearer(user))).json()["avatar"]
    just_over = jpeg_with_exif() + b"\0" * (5 * MiB)  # a valid JPEG start, padded past the limit
    assert 5 * MiB < len(just_over) < 5 * MiB + 64 * 1024
    assert_problem(await upload(client, bearer, user, just_over), 413)
    assert_problem(await upload(client, bearer, user, b"\xff" * (8 * MiB)), 413)
    assert (await client.get("/api/auth/user", headers=bearer(user))).json()["avatar"] == before


async def test_exactly_5_mib_is_not_refused_for_its_size(client, register, bearer):
    user = await register("avatar_7")
    data = jpeg_with_exif()
    data += b"\0" * (5 * MiB - len(data))  # trailing bytes after the image end
    r = await upload(client, bearer, user, data)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b"hello, this is just text\n" * 100, "notes.txt"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "doc.pdf"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "x.svg"),
    ],
)
async def test_not_an_image_is_415(client, register, bearer, assert_problem, data, name):
    user = await register("avatar_8")
    assert_problem(await upload(client, bearer, user, data, name, "image/png"), 415)
    assert (await client.get("/api/auth/user", headers=bearer(user))).json()["avatar"] is None


def bmp() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, format="BMP")
    return out.getvalue()


async def test_an_image_type_that_is_not_allowed_is_415(client, register, bearer, assert_problem):
    user = await register("avatar_9")
    assert_problem(await upload(client, bearer, user, bmp(), "a.bmp", "image/bmp"), 415)


async def test_truncated_png_is_422(client, register, bearer, assert_problem):
    user = await register("avatar_10")
    whole = png((300, 300), "RGB")
    pixels = bytes(range(256)) * (300 * 300 * 3 // 256)
    noisy = Image.frombytes("RGB", (300, 300), pixels + b"\0" * (300 * 300 * 3 - len(pixels)))
    out = io.BytesIO()
    noisy.save(out, format="PNG")
    for data in (whole[: len(whole) // 2], out.getvalue()[: len(out.getvalue()) // 2]):
        assert_problem(await upload(client, bearer, user, data, "a.png", "image/png"), 422, fields=("file",))


async def test_corrupt_jpeg_is_422(client, register, bearer, assert_problem):
    user = await register("avatar_11")
    data = jpeg_with_exif()
    assert_problem(await upload(client, bearer, user, data[: len(data) // 3]), 422, fields=("file",))


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares a huge canvas (decoding it would need width*height pixels)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("size", [(4097, 1), (1, 4097), (5000, 5000)])
async def test_more_than_4096_pixels_on_a_side_is_422(client, register, bearer, assert_problem, size):
    user = await register("avatar_12")
    if size[0] * size[1] <= 4097 * 16:
        out = io.BytesIO()
        Image.new("L", size).save(out, format="PNG")  # a real, valid image
        data = out.getvalue()
    else:
        data = png_header_only(*size)
    assert_problem(await upload(client, bearer, user, data, "big.png", "image/png"), 422, fields=("file",))


async def test_huge_canvas_with_too_little_data_is_422_not_500(client, register, bearer, assert_problem):
    # within the side limit, but the pixel data cannot fill it: corrupt, and cheap to refuse
    user = await register("avatar_13")
    r = await upload(client, bearer, user, png_header_only(4096, 4096), "bomb.png", "image/png")
    assert_problem(r, 422, fields=("file",))


async def test_exactly_4096_pixels_is_accepted(client, register, bearer):
    user = await register("avatar_14")
    out = io.BytesIO()
    Image.new("L", (4096, 8)).save(out, format="PNG")
    r = await upload(client, bearer, user, out.getvalue(), "wide.png", "image/png")
    assert r.status_code == 200, r.text


async def test_missing_file_field_is_422(client, register, bearer, assert_problem):
    user = await register("avatar_15")
    r = await upload(client, bearer, user, png(), field="image")
    assert_problem(r, 422, fields=("file",))
    r = await client.post("/api/upload/avatar", headers=bearer(user), data={"file": "just a string"})
    assert_problem(r, 422, fields=("file",))
    r = await client.post("/api/upload/avatar", headers=bearer(user), json={"file": "abc"})
    assert_problem(r, 422, fields=("file",))
    r = await client.post("/api/upload/avatar", headers=bearer(user))
    assert_problem(r, 422, fields=("file",))


async def test_empty_file_is_422(client, register, bearer, assert_problem):
    user = await register("avatar_16")
    assert_problem(await upload(client, bearer, user, b""), 422)


async def test_upload_requires_a_token(client, assert_problem):
    r = await client.post("/api/upload/avatar", files={"file": ("a.png", png(), "image/png")})
    assert_problem(r, 401)
