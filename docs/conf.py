"""Sphinx configuration for p2pkit's documentation (built with -W: warnings are errors)."""

from __future__ import annotations

import sys
from pathlib import Path

DOCS = Path(__file__).parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))

project = "p2pkit"
author = "p2pkit developers"
copyright = "2026, p2pkit developers"

extensions = [
    # myst-nb is the Markdown parser (it loads myst-parser) and executes the course's
    # notebooks (tutorials/, seen here as docs/course/) while the site is built.
    "myst_nb",
    "sphinx_design",  # the course's dropdowns (hints, solutions)
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
    "p2pkit_schema_sphinx",
    "p2pkit_layout",
    "p2pkit_json_schema",
    "p2pkit_captures",
    "p2pkit_conformance_matrix",
    "p2pkit_cli_reference",
    "p2pkit_conformance_catalog",
    "p2pkit_link_check",
    "p2pkit_payload_examples",
    "p2pkit_xref",
]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb"}
# docs/course is a link to tutorials/; its README is the course's table of contents on GitHub,
# docs/course.md is the same table for the site.
exclude_patterns = ["_build", "course/README.md"]
# Furo: made for reading (a sidebar per page, search, dark mode) and readable on a phone.
html_theme = "furo"
html_title = "p2pkit"
html_static_path = ["_static"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# Every cross-reference must resolve (-W makes a broken one an error); p2pkit_xref resolves
# the short and re-exported names p2pkit's docstrings use. The build is offline, so there is
# no intersphinx: references to the standard library and to third-party packages cannot
# resolve and are ignored, by module, here (and nothing else is):
nitpicky = True
NOT_P2PKIT = [
    # the standard library (docs.python.org, not reachable from the build)
    "_asyncio", "asyncio", "collections", "enum", "importlib", "ipaddress", "os", "pathlib",
    "random", "socket", "ssl", "struct", "time", "types", "typing",
    # third-party packages p2pkit's signatures name
    "click", "construct", "cryptography", "numpy", "np", "scapy",
]
nitpick_ignore_regex = [
    ("py:.*", rf"({'|'.join(NOT_P2PKIT)})(\..+)?"),
    # pathlib.Path, as `from pathlib import Path` leaves it in annotations
    ("py:class", "Path"),
    # construct's exceptions, named without their module by construct's own signatures
    ("py:exc", "ConstructError|SizeofError"),
    # private helpers named in public annotations (a leading underscore: not documented)
    ("py:class", r"p2pkit\..*\._[A-Za-z]\w*"),
]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# The course (tutorials/*.md, MyST-Markdown notebooks): executed at every build, top to bottom,
# offline; a failing cell fails the build (-W). "cache" re-runs only the chapters that changed.
nb_execution_mode = "cache"
nb_execution_timeout = 120
# The cache lives with this checkout's build (gitignored), never in a directory other checkouts share.
nb_execution_cache_path = str(DOCS / "_build" / ".jupyter_cache")
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
