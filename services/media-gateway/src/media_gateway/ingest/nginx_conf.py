"""Render deploy/ingest/nginx-rtmp.conf.template, and the ABR ladder.

The ladder is a comma-separated list (INGEST_LADDER), e.g. the default `source,480p` or
`source:8000k,720p,480p:1200k,360p`: `source` is the encoder's stream copied as is (always first),
every `<height>p[:<video kbps>k]` is an H.264 rendition the media gateway's transcoder makes from it
(media_gateway.llhls.transcoder), served as `<session>_src_<name>` and listed in the master playlist
with its BANDWIDTH (and RESOLUTION, assuming 16:9).

Key frames of the transcoded renditions are aligned on segment boundaries (`-force_key_frames`
every second, `-g` = fps, `-sc_threshold 0`), so their segments line up; the copied source keeps the
encoder's key frames (set the encoder's key-frame interval to 1 s, e.g. in OBS, for 1-second
segments there too).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from media_gateway.ingest.service import SOURCE_SUFFIX

DEFAULT_LADDER = "source,480p"
TEMPLATE = Path(__file__).resolve().parents[5] / "deploy" / "ingest" / "nginx-rtmp.conf.template"

# height -> (video kbps, audio kbps)
PRESETS = {2160: (14000, 192), 1440: (9000, 192), 1080: (5000, 160), 720: (2800, 128), 540: (2000, 128),
           480: (1400, 128), 360: (800, 96), 240: (400, 64), 144: (200, 48)}
MAX_UNIX_SOCKET_PATH = 107  # sun_path is 108 bytes with its NUL
SOURCE_KBPS = 6000  # the master playlist needs a BANDWIDTH for the copied source; a fair guess

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Z0-9_]+)\s*\}\}")
_RENDITION = re.compile(r"(?P<height>\d{3,4})p(?::(?P<kbps>\d{2,6})k)?")
_SOURCE = re.compile(r"source(?::(?P<kbps>\d{2,6})k)?")


class LadderError(ValueError):
    pass


@dataclass(frozen=True)
class Rendition:
    name: str  # "source" or e.g. "480p"
    height: int | None  # None: the source, copied
    video_kbps: int
    audio_kbps: int

    @property
    def suffix(self) -> str:
        return SOURCE_SUFFIX if self.height is None else f"{SOURCE_SUFFIX}_{self.name}"

    @property
    def bandwidth(self) -> int:
        # bits per second of the stream plus ~10% container overhead
        return (self.video_kbps + self.audio_kbps) * 1100


def parse_ladder(spec: str | None) -> list[Rendition]:
    items = [item.strip().lower() for item in (spec or DEFAULT_LADDER).split(",") if item.strip()]
    source = Rendition("source", None, SOURCE_KBPS, 160)
    renditions: list[Rendition] = []
    for item in items:
        if m := _SOURCE.fullmatch(item):
            source = Rendition("source", None, int(m["kbps"] or SOURCE_KBPS), 160)
            continue
        m = _RENDITION.fullmatch(item)
        if m is None:
            raise LadderError(f"ladder entry {item!r}: expected 'source' or '<height>p[:<kbps>k]', e.g. 480p:1400k")
        height = int(m["height"])
        if not 144 <= height <= 2160:
            raise LadderError(f"ladder entry {item!r}: height must be between 144 and 2160")
        preset = PRESETS.get(height) or PRESETS[min(PRESETS, key=lambda h: abs(h - height))]
        renditions.append(Rendition(f"{height}p", height, int(m["kbps"] or preset[0]), preset[1]))
    if len({r.height for r in renditions}) != len(renditions):
        raise LadderError("each rendition height may appear only once in the ladder")
    renditions.sort(key=lambda r: r.height or 0, reverse=True)
    return [source, *renditions]


def local_rtmp_address(listen: str) -> str:
    """`0.0.0.0:1935`, `[::]:1935`, `1935` or `127.0.0.1:1935` -> an address nginx can reach itself on."""
    host, sep, port = listen.rpartition(":")
    if not sep:
        host, port = "", listen
    if host in ("", "*", "0.0.0.0", "[::]"):
        host = "127.0.0.1"
    return f"{host}:{port}"


def render_template(template: str, values: Mapping[str, str]) -> str:
    """`{{NAME}}` placeholders; `$` stays nginx's own. An unknown placeholder is an error."""

    def sub(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"the ingest template needs {key}, which nothing provides")
        return str(values[key])

    return _PLACEHOLDER.sub(sub, template)


def source_play_allow(addresses: str | None) -> str:
    """`allow play` lines for src: loopback (the transcoder) plus the media gateway's addresses.

    `addresses` is comma- or space-separated (addresses or CIDRs, e.g. a cluster's pod network).
    """
    entries = ["127.0.0.1", *(a for a in re.split(r"[\s,]+", addresses or "") if a)]
    for entry in entries:
        if not re.fullmatch(r"[0-9A-Fa-f.:]+(/[0-9]{1,3})?", entry):
            raise ValueError(f"not an address or CIDR for src's allow play: {entry!r}")
    return "\n            ".join(f"allow play {entry};" for entry in dict.fromkeys(entries))


def rtmp_socket_path(prefix: str) -> str:
    path = f"{prefix.rstrip('/')}/rtmp.sock"
    if len(path.encode()) > MAX_UNIX_SOCKET_PATH:
        raise ValueError(f"the ingest's unix socket path {path!r} is longer than {MAX_UNIX_SOCKET_PATH} bytes; "
                         "use a shorter prefix (or pass RTMP_SOCKET)")
    return path


def render_ingest_config(values: Mapping[str, str], *, template: str | None = None, ladder: str | None = None) -> str:
    """The nginx.conf of the ingest. `values` gives USER_DIRECTIVE, PREFIX, RTMP_LISTEN,
    MEDIA_GATEWAY_UPSTREAM, RECORD_ROOT and CONTROL_LISTEN (optionally SOURCE_PLAY_ALLOW: the media
    gateway's addresses, when it is not on loopback, and RTMP_SOCKET). `ladder` is only checked
    (a bad INGEST_LADDER stops the ingest as it stops the media gateway): the ingest no longer
    transcodes or writes HLS."""
    parse_ladder(ladder)
    computed = {"RTMP_SOCKET": values.get("RTMP_SOCKET") or rtmp_socket_path(values["PREFIX"])}
    values = {**values, "SOURCE_PLAY_ALLOW": source_play_allow(values.get("SOURCE_PLAY_ALLOW"))}
    text = template if template is not None else TEMPLATE.read_text()
    return render_template(text, {**computed, **values})
