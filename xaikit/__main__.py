"""Command line: ``python -m xaikit figures --model vgg16-shapes --out DIR`` (also ``xaikit``).

``figures`` regenerates every figure of the workbook as PNG and PDF with a manifest
(:func:`xaikit.figures.export_figures`); ``--list`` prints the registered figures;
``strip-widgets`` removes live-widget outputs and widget state from executed notebooks
(the committed outputs keep the static figure of each explorer, :mod:`xaikit.explorers`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "strip_widgets"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def strip_widgets(path: str | Path) -> int:
    """Drop widget views from the outputs and widget state from the metadata of a notebook.

    Returns the number of outputs changed. Without a live kernel a widget view shows
    "model not found"; the static PNG next to it in the same output is what readers see.
    """
    path = Path(path)
    nb = json.loads(path.read_text(encoding="utf-8"))
    changed = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                del out["data"][WIDGET_VIEW]
                changed += 1
    if nb.get("metadata", {}).pop("widgets", None) is not None:
        changed += 1
    if changed:
        path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return changed


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xaikit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="regenerate the workbook's figures (PNG, PDF, manifest)")
    fig.add_argument("--model", default="vgg16-shapes",
                     help="vgg16-shapes (offline, default), vgg16 (ImageNet), vgg16-untrained, auto")
    fig.add_argument("--out", default="figures", help="output folder (default: ./figures)")
    fig.add_argument("--only", nargs="+", metavar="NAME", help="only these figures")
    fig.add_argument("--list", action="store_true", help="list the figures and exit")
    fig.add_argument("--no-progress", action="store_true", help="no progress bar")
    strip = sub.add_parser("strip-widgets", help="remove widget views/state from notebooks")
    strip.add_argument("notebooks", nargs="+")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m xaikit`` and the ``xaikit`` console script."""
    args = _parser().parse_args(argv)
    if args.command == "strip-widgets":
        for path in args.notebooks:
            print(f"{path}: {strip_widgets(path)} widget outputs/state removed")
        return 0
    import matplotlib

    matplotlib.use("Agg")
    from . import figures
    from .models import ModelUnavailableError, load_model

    if args.list:
        infos = figures.list_figures()
        widths = [max(len(getattr(i, field)) for i in infos) for field in ("notebook", "name")]
        for info in infos:
            print(f"{info.notebook:<{widths[0]}}  {info.name:<{widths[1]}}  {info.title}")
        return 0
    try:
        model = load_model(args.model)
    except (ModelUnavailableError, ValueError) as error:
        print(f"xaikit figures: {error}", file=sys.stderr)
        return 2
    try:
        manifest = figures.export_figures(model, args.out, args.only,
                                          progress=not args.no_progress)
    except ValueError as error:
        print(f"xaikit figures: {error}", file=sys.stderr)
        return 2
    print(f"{len(manifest)} figures (PNG and PDF) in {args.out}; list in "
          f"{Path(args.out) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
