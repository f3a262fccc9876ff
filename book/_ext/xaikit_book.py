"""Sphinx helpers of the workbook's website (book/conf.py loads this as an extension)."""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat
from sphinx import addnodes
from sphinx.transforms.post_transforms import SphinxPostTransform

# An inline Markdown link or image to a relative path: `](target)` or `](target "title")`,
# target neither a URL (scheme:), nor an anchor (#...), nor absolute (/...).
_RELATIVE_LINK = re.compile(r"(\]\()(?![a-zA-Z][a-zA-Z0-9+.-]*:|#|/)([^)\s]+)")
# What the build copies from notebooks/: the numbered notebooks and the learning path.
STAGED = ("[0-9][0-9]_*.ipynb", "README.md")


def stage_notebooks(app, config) -> None:
    """Copy the workbook's notebooks and learning path into ``<srcdir>/notebooks``.

    Sphinx takes pages only from inside its source folder and resolves every link after
    following symbolic links, so a link to ``../notebooks`` would put the notebooks outside it.
    Only files that differ (size or modification time) are copied, by an atomic rename so that
    two builds at once never read half a file; copies whose original is gone are removed.
    """
    source = Path(config.xaikit_notebooks)
    target = Path(app.srcdir) / "notebooks"
    if target.is_symlink() or (target.exists() and not target.is_dir()):
        raise RuntimeError(f"{target} must be a folder (the build copies the notebooks there)")
    target.mkdir(exist_ok=True)
    wanted = {path.name: path for pattern in STAGED for path in sorted(source.glob(pattern))}
    if not any(name.endswith(".ipynb") for name in wanted):
        raise RuntimeError(f"no numbered notebooks in {source}")
    for name, path in wanted.items():
        copy, stat = target / name, path.stat()
        if copy.exists():
            have = copy.stat()
            if (have.st_size, have.st_mtime_ns) == (stat.st_size, stat.st_mtime_ns):
                continue
        handle, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.")
        os.close(handle)
        shutil.copy2(path, tmp)
        os.replace(tmp, copy)
    for pattern in STAGED:
        for copy in target.glob(pattern):
            if copy.name not in wanted:
                copy.unlink()


def read_notebook(text: str, **_) -> nbformat.NotebookNode:
    """Read a notebook as myst-nb does, tagging cells saved with their source hidden.

    The "Solutions (collapsed)" cells carry ``metadata.jupyter.source_hidden``, which JupyterLab
    honours and myst-nb does not; myst-nb's ``hide-input`` tag collapses them on the site too.
    """
    notebook = nbformat.reads(text, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and cell.metadata.get("jupyter", {}).get("source_hidden"):
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
    return notebook


def rebase_included_links(app, relative_path: Path, parent_docname: str, content: list[str]) -> None:
    """Make relative links of a file included into the front page relative to the front page.

    ``notebooks/README.md`` links ``00_setup_and_tour.ipynb``; included into ``index.md`` (one
    folder up) that is ``notebooks/00_setup_and_tour.ipynb``. MyST's ``relative-docs`` option
    does this only for links starting with one given prefix. Inline links only.
    """
    if parent_docname != app.config.root_doc:
        return
    folder = Path(relative_path).parent
    if folder == Path("."):
        return

    def rebase(match: re.Match) -> str:
        return match.group(1) + os.path.normpath(folder / match.group(2)).replace(os.sep, "/")

    content[0] = _RELATIVE_LINK.sub(rebase, content[0])


class LearningPathLinks(SphinxPostTransform):
    """A link to the learning path (``notebooks/README.md``, included into the front page and
    not a page of its own) goes to the front page. Runs before MyST resolves links (priority 9)."""

    default_priority = 8
    formats = ("html",)

    def run(self, **kwargs) -> None:
        for node in self.document.findall(addnodes.pending_xref):
            if (node.get("reftype"), node.get("refdomain")) == ("myst", "doc") \
                    and node.get("reftarget") == "notebooks/README":
                node["reftarget"] = self.config.root_doc


def setup(app):
    app.add_post_transform(LearningPathLinks)
    app.add_config_value("xaikit_notebooks", "", "env", types=frozenset({str}))
    app.connect("config-inited", stage_notebooks)
    app.connect("include-read", rebase_included_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
