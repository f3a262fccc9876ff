"""Command line: ``python -m xaikit figures --model vgg16-shapes --out DIR`` (also ``xaikit``).

``figures`` regenerates every figure of the workbook as PNG and PDF with a manifest
(:func:`xaikit.figures.export_figures`) into a new or empty folder, or with ``--force`` over a
previous export (only the files its manifest lists are deleted); ``--list`` prints the
registered figures; ``strip-widgets`` removes live-widget outputs and widget state from
executed notebooks (the committed outputs keep the static figure of each explorer,
:mod:`xaikit.explorers`). Bad input (an unusable output folder, a file that is not an nbformat
4 notebook) gives a one-line ``xaikit COMMAND: error: ...`` on stderr and exit status 2.
``lab`` opens JupyterLab on the notebooks (:mod:`xaikit.lab`: ``--allow-root`` as root, no
browser without a display; other options go to JupyterLab).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main", "strip_widgets"]

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

FORCE_HELP = ("replace a previous export in --out: delete the files its manifest.json lists "
              "and the manifests first; a folder holding any other file is still refused")


def _read_notebook(path: Path) -> dict:
    """The nbformat 4 notebook at ``path``; ValueError naming the file and the problem otherwise."""
    try:
        nb = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a folder, not a notebook") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read it ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a notebook (not UTF-8 text)") from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not a notebook (invalid JSON at line {error.lineno}: "
                         f"{error.msg})") from None
    if not isinstance(nb, dict) or "nbformat" not in nb:
        raise ValueError(f"{path}: JSON but not a notebook (no nbformat field)")
    if nb["nbformat"] != 4:
        raise ValueError(f"{path}: nbformat {nb['nbformat']} notebook; strip-widgets reads "
                         "nbformat 4 (open and save it in Jupyter to upgrade it)")
    if not _well_formed(nb):
        raise ValueError(f"{path}: malformed nbformat 4 notebook (cells, outputs or metadata)")
    return nb


def _well_formed(nb: dict) -> bool:
    """Whether the cells, outputs and metadata that :func:`_strip` reads have their JSON types."""
    cells = nb.get("cells")
    if not isinstance(cells, list) or not isinstance(nb.get("metadata", {}), dict):
        return False
    for cell in cells:
        outputs = cell.get("outputs", []) if isinstance(cell, dict) else None
        if not isinstance(outputs, list) or not all(
                isinstance(out, dict) and isinstance(out.get("data", {}), dict) for out in outputs):
            return False
    return True


def _strip(nb: dict) -> int:
    """Drop widget views and widget state from ``nb`` in place; the number of changes."""
    changed = 0
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            if WIDGET_VIEW in out.get("data", {}):
                del out["data"][WIDGET_VIEW]
                changed += 1
    if nb.get("metadata", {}).pop("widgets", None) is not None:
        changed += 1
    return changed


def _write_notebook(path: Path, nb: dict) -> None:
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def strip_widgets(path: str | Path) -> int:
    """Drop widget views from the outputs and widget state from the metadata of a notebook.

    Returns the number of outputs changed. Without a live kernel a widget view shows
    "model not found"; the static PNG next to it in the same output is what readers see.

    Raises
    ------
    ValueError
        ``path`` is missing, a folder, or not an nbformat 4 notebook (the message names it).
    """
    path = Path(path)
    nb = _read_notebook(path)
    changed = _strip(nb)
    if changed:
        _write_notebook(path, nb)
    return changed


def _error(command: str, message: object) -> int:
    """Print ``xaikit COMMAND: error: MESSAGE`` on one line (as argparse does); exit status 2."""
    print(f"xaikit {command}: error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xaikit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    fig = sub.add_parser("figures", help="regenerate the workbook's figures (PNG, PDF, manifest)")
    fig.add_argument("--model", default="vgg16-shapes",
                     help="vgg16-shapes (offline, default), vgg16 (ImageNet), vgg16-untrained, auto")
    fig.add_argument("--out", default="figures",
                     help="output folder, new or empty (default: ./figures)")
    fig.add_argument("--force", action="store_true", help=FORCE_HELP)
    fig.add_argument("--only", nargs="+", metavar="NAME",
                     help="only these figures (a repeated name is drawn once)")
    fig.add_argument("--list", action="store_true", help="list the figures and exit")
    fig.add_argument("--no-progress", action="store_true", help="no progress bar")
    strip = sub.add_parser("strip-widgets", help="remove widget views/state from notebooks",
                           description="Remove widget views and state from nbformat 4 notebooks; "
                           "every file is checked before any is rewritten.")
    strip.add_argument("notebooks", nargs="+")
    lab = sub.add_parser("lab", help="open JupyterLab on the workbook (as root too; without a "
                         "display it prints the address with its token)")
    lab.add_argument("folder", nargs="?", default="notebooks")
    lab.add_argument("--port", type=int, help="port (default: JupyterLab's)")
    lab.add_argument("--no-browser", action="store_true",
                     help="open no browser (the default where there is no display)")
    return parser


def _strip_command(paths: Sequence[str]) -> int:
    """``strip-widgets``: read and check every notebook, then rewrite the changed ones."""
    notebooks, errors = [], []
    for name in paths:
        try:
            nb = _read_notebook(Path(name))
        except ValueError as error:
            errors.append(error)
            continue
        changed = _strip(nb)
        if changed and not os.access(name, os.W_OK):
            errors.append(f"{name}: not writable")
        notebooks.append((name, nb, changed))
    for error in errors:
        _error("strip-widgets", error)
    if errors:
        return 2
    for name, nb, changed in notebooks:
        if changed:
            try:
                _write_notebook(Path(name), nb)
            except OSError as error:
                return _error("strip-widgets", f"{name}: cannot write it ({error.strerror})")
        print(f"{name}: {changed} widget outputs/state removed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m xaikit`` and the ``xaikit`` console script."""
    args, extra = _parser().parse_known_args(argv)
    if extra and args.command != "lab":
        _parser().parse_args(argv)  # the usual argparse error for unknown arguments
    if args.command == "strip-widgets":
        return _strip_command(args.notebooks)
    if args.command == "lab":
        from .lab import main as lab

        return lab(args.folder, args.port, False if args.no_browser else None, extra)
    import matplotlib

    matplotlib.use("Agg")
    from . import figures
    from .figures.export import previous_export, select_figures
    from .models import ModelUnavailableError, load_model

    if args.list:
        infos = figures.list_figures()
        widths = [max(len(getattr(i, field)) for i in infos) for field in ("notebook", "name")]
        for info in infos:
            print(f"{info.notebook:<{widths[0]}}  {info.name:<{widths[1]}}  {info.title}")
        return 0
    try:                        # names and folder first: no model download for a bad command
        select_figures(args.only)
        previous = previous_export(args.out, force=args.force)
        model = load_model(args.model)
    except (ModelUnavailableError, ValueError) as error:
        return _error("figures", error)
    if previous:
        print(f"--force: deleting the previous export in {args.out} ({len(previous)} files)")
    try:
        manifest = figures.export_figures(model, args.out, args.only, force=args.force,
                                          progress=not args.no_progress)
    except ValueError as error:
        return _error("figures", error)
    except OSError as error:
        return _error("figures", f"cannot write {error.filename or args.out}: "
                                 f"{error.strerror or error}")
    print(f"{len(manifest)} figures (PNG and PDF) in {args.out}; list in "
          f"{Path(args.out) / 'manifest.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
