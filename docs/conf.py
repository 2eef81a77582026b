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
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "p2pkit_schema_sphinx",
    "p2pkit_layout",
    "p2pkit_json_schema",
    "p2pkit_captures",
    "p2pkit_conformance_matrix",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path = ["_static"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
nitpicky = False
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
