"""The participant link as a QR code, drawn server-side as SVG by segno (pure Python; no network)."""
from __future__ import annotations

import segno

DARK, LIGHT = "#1d2430", "#ffffff"


def qr_svg_inline(url: str, *, scale: int = 4) -> str:
    """An <svg> element (for an HTML page) encoding `url`, error correction M, with a quiet zone of
    two modules; its <title> names the link for screen readers."""
    code = segno.make(url, error="m", micro=False)
    svg = code.svg_inline(scale=scale, dark=DARK, light=LIGHT, border=2, title=f"QR code of {url}")
    return svg.replace("<svg ", '<svg role="img" ', 1)


def qr_svg_document(url: str, *, scale: int = 8) -> bytes:
    """A standalone SVG file encoding `url` (to print or put on a slide)."""
    import io

    buffer = io.BytesIO()
    segno.make(url, error="m", micro=False).save(buffer, kind="svg", scale=scale, dark=DARK, light=LIGHT, border=4,
                                                  title=f"QR code of {url}")
    return buffer.getvalue()
