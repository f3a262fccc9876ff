"""Export every registered figure: ``python -m xaikit figures --model NAME --out DIR``.

Introduced in ``README.md`` (regenerating the workbook's figures for papers and slides).
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Sequence

from torch import nn

from .registry import FigureInfo, list_figures, save_figure

__all__ = ["export_figures", "previous_export", "select_figures", "OutputFolderError",
           "MANIFEST_FIELDS"]

MANIFEST_FIELDS = ("name", "png", "pdf", "notebook", "section", "title")
"""Columns of ``manifest.csv`` (and keys of each entry of ``manifest.json``)."""

MANIFEST_FILES = ("manifest.json", "manifest.csv")


class OutputFolderError(ValueError):
    """The output folder cannot take an export; the message says which folder and why."""


def select_figures(names: Sequence[str] | None = None) -> list[FigureInfo]:
    """The registered figures called ``names`` (all by default), each once, in the given order.

    Raises
    ------
    ValueError
        Naming the unknown figures and the known ones.
    """
    figures = list_figures()
    if names is None:
        return figures
    known = {f.name: f for f in figures}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in dict.fromkeys(names)]     # a repeated name is drawn once


def previous_export(out: str | Path, *, force: bool = False) -> list[Path]:
    """Check that ``out`` can take an export and return the files of a previous export there.

    ``out`` may be missing (it is then created inside the nearest existing folder, which must
    be writable) or an empty writable folder; both give ``[]``. A non-empty folder is refused
    unless ``force``. With ``force`` it may hold only a previous export: ``manifest.json``,
    ``manifest.csv`` and the PNG and PDF files that this ``manifest.json`` lists; those files
    are returned (:func:`export_figures` deletes them). Any other file makes it refuse, so an
    export never deletes a file it did not write.

    Parameters
    ----------
    out : str or pathlib.Path
        The output folder.
    force : bool
        Accept a folder holding a previous export.

    Returns
    -------
    list of pathlib.Path
        The files of the previous export, sorted (empty for a new or empty folder).

    Raises
    ------
    OutputFolderError
        ``out`` (or a folder above it) is a file or is not writable, or ``out`` is not empty
        (without ``force``) or holds files that are not from a previous export.
    """
    out = Path(out)
    existing = next(p for p in (out, *out.parents) if p.exists())
    where = f"{out}" if existing == out else f"cannot create {out}: {existing}"
    if not existing.is_dir():
        raise OutputFolderError(f"{where} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputFolderError(f"{where} is not writable")
    if existing != out or not any(out.iterdir()):
        return []
    if not force:
        raise OutputFolderError(f"{out} is not empty (--force replaces a previous export there)")
    try:
        entries = json.loads((out / "manifest.json").read_text(encoding="utf-8"))["figures"]
        listed = set(MANIFEST_FILES) | {entry[key] for entry in entries for key in ("png", "pdf")}
    except (OSError, ValueError, LookupError, TypeError):
        raise OutputFolderError(f"{out} is not empty and has no manifest.json of a previous "
                                "export; not deleting anything there") from None
    files, others = [], []
    for root, folders, names in os.walk(out):        # does not enter linked folders
        for name in folders + names:
            path = Path(root, name)
            if not path.is_dir() or path.is_symlink():
                (files if path.relative_to(out).as_posix() in listed else others).append(path)
    if others:
        raise OutputFolderError(f"{out} holds {len(others)} file(s) that are not from a previous "
                                f"export, e.g. {min(others).relative_to(out)}; not deleting "
                                "anything there")
    return sorted(files)


def _remove(files: list[Path], out: Path) -> None:
    """Delete ``files`` (:func:`previous_export`) and the folders under ``out`` left empty."""
    for path in files:
        path.unlink()
    for folder in sorted({p.parent for p in files} - {out}, key=lambda p: -len(p.parts)):
        if not any(folder.iterdir()):
            folder.rmdir()


def export_figures(model: nn.Module, out: str | Path, names: Sequence[str] | None = None,
                   *, force: bool = False, progress: bool = True) -> list[dict]:
    """Draw each registered figure for ``model`` and save it as PNG and PDF under ``out``.

    Files are ``out/<notebook>/<name>.png`` and ``.pdf``; ``out/manifest.json`` and
    ``out/manifest.csv`` list them with their notebook, section and title. A rerun with the
    same library versions writes byte-identical files (:func:`save_figure`).

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`xaikit.load_model`.
    out : str or pathlib.Path
        Output folder: new or empty (created if missing).
    names : sequence of str, optional
        Only these figures (default: all); a repeated name is drawn once.
    force : bool
        Replace a previous export in ``out``: delete the files its ``manifest.json`` lists
        and the manifests first. ``out`` must hold nothing else (:func:`previous_export`).
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    list of dict
        The manifest entries (paths relative to ``out``).

    Raises
    ------
    ValueError
        An unknown figure name, or :class:`OutputFolderError` (``out`` cannot take the
        export); nothing is deleted or written then.
    """
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    from ..models import model_spec
    from ..session import setup

    figures = select_figures(names)
    out = Path(out)
    _remove(previous_export(out, force=force), out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = []
    for info in tqdm(figures, desc="figures", unit="fig", disable=not progress):
        setup(0)            # the notebooks' state: seeds, deterministic algorithms, style
        fig, _ = info.fn(model)
        (out / info.notebook).mkdir(exist_ok=True)
        png, pdf = save_figure(fig, out / info.notebook / info.name)
        plt.close(fig)
        manifest.append({"name": info.name, "png": png.relative_to(out).as_posix(),
                         "pdf": pdf.relative_to(out).as_posix(), "notebook": info.notebook,
                         "section": info.section, "title": info.title})
    document = {"model": model_spec(model).name, "figures": manifest}
    (out / "manifest.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n",
                                      encoding="utf-8")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest)
    return manifest
