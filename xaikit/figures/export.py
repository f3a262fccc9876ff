"""Export every registered figure: ``python -m xaikit figures --model NAME --out DIR``.

Introduced in ``README.md`` (regenerating the workbook's figures for papers and slides).
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Sequence

from torch import nn

from .registry import FigureInfo, list_figures, save_figure

__all__ = ["export_figures", "MANIFEST_FIELDS"]

MANIFEST_FIELDS = ("name", "png", "pdf", "notebook", "section", "title")
"""Columns of ``manifest.csv`` (and keys of each entry of ``manifest.json``)."""


def _select(names: Sequence[str] | None) -> list[FigureInfo]:
    figures = list_figures()
    if names is None:
        return figures
    known = {f.name: f for f in figures}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return [known[n] for n in names]


def export_figures(model: nn.Module, out: str | Path, names: Sequence[str] | None = None,
                   *, progress: bool = True) -> list[dict]:
    """Draw each registered figure for ``model`` and save it as PNG and PDF under ``out``.

    Files are ``out/<notebook>/<name>.png`` and ``.pdf``; ``out/manifest.json`` and
    ``out/manifest.csv`` list them with their notebook, section and title. A rerun with the
    same library versions writes byte-identical files (:func:`save_figure`).

    Parameters
    ----------
    model : torch.nn.Module
        From :func:`xaikit.load_model`.
    out : str or pathlib.Path
        Output folder (created).
    names : sequence of str, optional
        Only these figures (default: all).
    progress : bool
        Show a tqdm progress bar (on stderr).

    Returns
    -------
    list of dict
        The manifest entries (paths relative to ``out``).
    """
    import matplotlib.pyplot as plt
    from tqdm.auto import tqdm

    from ..models import model_spec
    from ..session import setup

    figures = _select(names)
    out = Path(out)
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
    (out / "manifest.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    with open(out / "manifest.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest)
    return manifest
