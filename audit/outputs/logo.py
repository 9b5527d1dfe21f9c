"""The configured logo, embedded in the reports as a data: URI so they stay self-contained."""

from __future__ import annotations

import base64
import os
from pathlib import Path

LOGO_MAX_BYTES = 2_000_000


def load_logo(logo: str, base: Path | None) -> tuple[str | None, str | None]:
    """(data URI, warning): the configured logo embedded, so the report stays self-contained.

    Only from the operator's own config (analyze never passes one from a run's manifest). The
    type comes from the file's first bytes, not its name, and a symlink is refused, so a name
    like logo.png cannot pull another file into the report."""
    if not logo:
        return None, None
    path = Path(logo).expanduser()
    if not path.is_absolute() and base is not None and not path.exists():
        path = base / path
    if path.is_symlink():
        return None, f"logo {logo}: is a symbolic link; give the image file itself"
    try:
        # O_NOFOLLOW: a link swapped in after the check above is refused too
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(LOGO_MAX_BYTES + 1)
    except OSError as exc:
        return None, f"logo {logo}: {exc.strerror or exc}"
    if len(data) > LOGO_MAX_BYTES:
        return None, f"logo {logo}: larger than {LOGO_MAX_BYTES // 1_000_000} MB"
    media = image_type(data)
    if media is None:
        return None, f"logo {logo}: not a PNG, JPEG, GIF, WebP or SVG image (by its content)"
    return f"data:{media};base64,{base64.b64encode(data).decode('ascii')}", None


def image_type(data: bytes) -> str | None:
    """The media type of an image by its signature, or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    head = data[:1024].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"<?xml", b"<svg", b"<!--")) and b"<svg" in data[:4096]:
        return "image/svg+xml"
    return None
