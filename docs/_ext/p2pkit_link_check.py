"""Internal link checking of the built site, as part of the build (a warning, so an error
under ``-W``).

After an HTML build, :func:`broken_links` reads every page of the output and checks every
relative ``href`` and ``src``: the file it names must exist, and a ``#fragment`` must be an
``id`` in that file. External links (``http:``, ``https:``, ``mailto:``) are not followed: the
build runs offline.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sphinx.util import logging

logger = logging.getLogger(__name__)

#: Pages whose links are not checked: Sphinx's own generated pages and the viewcode copies.
SKIPPED = re.compile(r"^(_modules|_static|_sources|_images)/|^(genindex|search|py-modindex)\.html$")


class _Page(HTMLParser):
    """The ids and the relative links of one page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value is None:
                continue
            if name in ("id", "name"):
                self.ids.add(value)
            elif (name == "href" and tag in ("a", "link")) or (name == "src" and tag in (
                    "img", "script")):
                self.links.append(value)


def _read(path: Path, cache: dict[Path, _Page]) -> _Page:
    if path not in cache:
        page = _Page()
        page.feed(path.read_text(encoding="utf-8", errors="replace"))
        cache[path] = page
    return cache[path]


def broken_links(outdir: Path) -> list[tuple[str, str, str]]:
    """(page, link, why) for every relative link of the site that does not resolve."""
    cache: dict[Path, _Page] = {}
    broken = []
    for path in sorted(outdir.rglob("*.html")):
        page_name = path.relative_to(outdir).as_posix()
        if SKIPPED.search(page_name):
            continue
        for link in _read(path, cache).links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith(("javascript:", "data:")):
                continue
            target = (path.parent / unquote(parts.path)).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append((page_name, link, "no such file"))
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in _read(
                    target, cache).ids:
                broken.append((page_name, link, f"no id {fragment!r} in {target.name}"))
    return broken


def _check(app: Any, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page, link, why in broken_links(Path(app.outdir)):
        logger.warning("broken internal link in %s: %s (%s)", page, link, why)


def setup(app: Any) -> dict[str, Any]:
    """Check the built site's internal links when the HTML build finishes."""
    app.connect("build-finished", _check)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
