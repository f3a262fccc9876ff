"""Sphinx configuration of the workbook's website: ``make book`` builds ``book/_build/html``.

The committed, executed notebooks are the pages; nothing is re-executed
(``nb_execution_mode = "off"``: myst-nb renders the stored outputs). The front page
(``index.md``) includes the README's introduction and quickstart and the learning path
(``notebooks/README.md``); the sidebar lists the notebooks in their numbered order. MathJax is
bundled into the site (``sphinx-mathjax-offline``), so equations render without a network.
"""
from __future__ import annotations

import sys
from pathlib import Path

BOOK = Path(__file__).resolve().parent
sys.path.insert(0, str(BOOK / "_ext"))

# Sphinx reads pages only from inside its source folder (book/) and resolves links after
# following symbolic links, so the notebooks cannot be linked in: _ext/xaikit_book.py copies
# notebooks/[0-9][0-9]_*.ipynb and notebooks/README.md to book/notebooks/ (ignored by git; only
# changed files, times kept) before Sphinx looks for pages. Edit the notebooks in notebooks/.
xaikit_notebooks = str(BOOK.parent / "notebooks")

project = "xaikit"
author = "xaikit contributors"
copyright = "xaikit contributors"

extensions = [
    "myst_nb",
    "sphinx-mathjax-offline",   # MathJax 3 copied into _static/mathjax; no CDN
    "xaikit_book",              # _ext/xaikit_book.py: notebooks copied in, solutions collapsed
]

root_doc = "index"
# Only the front page and the numbered notebooks are pages (not notebooks/README.md, which
# index.md includes, nor scratch files or checkpoints next to the notebooks).
include_patterns = ["index.md", "notebooks/[0-9][0-9]_*.ipynb"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# -- notebooks: the committed outputs, never executed -------------------------------------------
nb_execution_mode = "off"
# Read .ipynb through _ext/xaikit_book.py: a cell saved with its source hidden (the collapsed
# "Solutions" cells) gets myst-nb's hide-input tag, so it stays collapsed on the site.
nb_custom_formats = {".ipynb": ["xaikit_book.read_notebook", {}, False]}
# Widgets: the committed notebooks hold no widget state (`xaikit strip-widgets`); should one
# slip in, no widget JavaScript is loaded from a CDN and the static fallback output is shown.
nb_ipywidgets_js = {}
nb_mime_priority_overrides = [("html", "application/vnd.jupyter.widget-view+json", None)]
nb_merge_streams = True

myst_enable_extensions = ["dollarmath", "amsmath"]
# $$...$$ inside a paragraph (as the notebooks write it, and as JupyterLab renders it)
myst_dmath_double_inline = True
myst_heading_anchors = 3

# -- HTML ------------------------------------------------------------------------------------------
html_theme = "sphinx_book_theme"
html_title = "xaikit: explaining image classifiers"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None
