"""The command line on bad input: a one-line ``xaikit COMMAND: error: ...`` on stderr and exit
status 2 instead of a traceback; ``figures --out`` never overwrites or deletes files that an
export did not write; ``strip-widgets`` rewrites nothing when one of its files is bad."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from xaikit.__main__ import main

FIGURE = "tent_composition"             # a cheap figure (toy model), in 04_shattered_gradients


def figures_cli(out, *extra: str) -> int:
    return main(["figures", "--out", str(out), "--only", FIGURE, *extra, "--no-progress"])


def one_line_error(capsys, command: str) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"xaikit {command}: error: "), err
    return err


def fake_export(out, tmp_path):
    """A previous export in ``out`` whose manifest lists one stale figure (and a file outside)."""
    (out / "00_old").mkdir(parents=True)
    for suffix in ("png", "pdf"):
        (out / "00_old" / f"stale.{suffix}").write_bytes(b"old")
    (tmp_path / "outside.txt").write_text("keep")
    entries = [{"name": "stale", "png": "00_old/stale.png", "pdf": "00_old/stale.pdf"},
               {"name": "escape", "png": "../outside.txt", "pdf": "00_old/stale.pdf"}]
    (out / "manifest.json").write_text(json.dumps({"model": "vgg16-shapes", "figures": entries}))
    (out / "manifest.csv").write_text("name,png,pdf\n")


# ------------------------------------------------------------------------------ figures --out
@pytest.mark.parametrize("where", ["file", "below a file"])
def test_figures_out_must_not_be_a_file(tmp_path, capsys, where):
    path = tmp_path / "taken.txt"
    path.write_text("mine")
    out = path if where == "file" else path / "figures"
    assert figures_cli(out) == 2
    err = one_line_error(capsys, "figures")
    assert f"{path} is a file, not a folder" in err
    assert path.read_text() == "mine"


def test_figures_out_must_be_writable(tmp_path, capsys, monkeypatch):
    # root (as in CI and containers) may write anywhere, so the permission answer is faked:
    # what is tested is that a folder the OS reports as read-only is refused before drawing
    from xaikit.figures import export

    out = tmp_path / "read-only"
    out.mkdir()
    monkeypatch.setattr(export.os, "access", lambda path, mode: False)
    assert figures_cli(out) == 2
    assert "is not writable" in one_line_error(capsys, "figures")


def test_figures_write_error_is_one_line(tmp_path, capsys, monkeypatch):
    # A write that fails while exporting (e.g. a read-only folder for root, a full disk).
    from xaikit.figures import export

    def refuse(fig, stem):
        raise PermissionError(13, "Permission denied", f"{stem}.png")

    monkeypatch.setattr(export, "save_figure", refuse)
    assert figures_cli(tmp_path / "out") == 2
    err = one_line_error(capsys, "figures")
    assert f"cannot write {tmp_path / 'out'}" in err and "Permission denied" in err


def test_figures_refuse_a_non_empty_folder_without_force(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert figures_cli(out) == 2
    err = one_line_error(capsys, "figures")
    assert "not empty" in err and "--force" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_figures_force_replaces_only_the_previous_export(tmp_path, capsys):
    out = tmp_path / "out"
    fake_export(out, tmp_path)
    assert figures_cli(out, "--force") == 0
    said = capsys.readouterr().out.splitlines()
    assert said[0] == f"--force: deleting the previous export in {out} (4 files)"
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    assert files == ["04_shattered_gradients", f"04_shattered_gradients/{FIGURE}.pdf",
                     f"04_shattered_gradients/{FIGURE}.png", "manifest.csv", "manifest.json"]
    assert (tmp_path / "outside.txt").read_text() == "keep"     # listed, but not in --out


@pytest.mark.parametrize("extra", ["notes.txt", "00_old/notes.txt", None])
def test_figures_force_refuses_files_not_from_an_export(tmp_path, capsys, extra):
    out = tmp_path / "out"
    fake_export(out, tmp_path)
    if extra is None:                                           # no manifest: nothing is known
        (out / "manifest.json").unlink()
        expected = "has no manifest.json"
    else:
        (out / extra).write_text("mine")
        expected = f"1 file(s) that are not from a previous export, e.g. {extra}"
    before = sorted(out.rglob("*"))
    assert figures_cli(out, "--force") == 2
    assert expected in one_line_error(capsys, "figures")
    assert sorted(out.rglob("*")) == before


def test_figures_only_draws_a_repeated_name_once(tmp_path):
    out = tmp_path / "out"
    assert main(["figures", "--out", str(out), "--only", FIGURE, "gradcam_maps", FIGURE,
                 "--no-progress"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert [entry["name"] for entry in manifest["figures"]] == [FIGURE, "gradcam_maps"]
    assert len((out / "manifest.csv").read_text().splitlines()) == 3


# ---------------------------------------------------------------------------- strip-widgets
def notebook(nbformat: int = 4) -> dict:
    data = {"text/plain": "x", "application/vnd.jupyter.widget-view+json": {"model_id": "a"}}
    return {"cells": [{"cell_type": "code", "outputs": [{"output_type": "display_data",
                                                         "data": data}]}],
            "metadata": {"widgets": {"state": {}}}, "nbformat": nbformat, "nbformat_minor": 5}


BAD_NOTEBOOKS = {                       # file content (None: missing, "folder") -> the problem
    "missing": (None, "no such file"),
    "folder": ("folder", "is a folder, not a notebook"),
    "not JSON": ("<html>", "not a notebook (invalid JSON at line 1"),
    "not UTF-8": (b"\xff\xfe\x00", "not a notebook (not UTF-8 text)"),
    "empty object": ("{}", "JSON but not a notebook (no nbformat field)"),
    "list": ("[]", "JSON but not a notebook (no nbformat field)"),
    "nbformat 3": (json.dumps({"worksheets": [], "metadata": {}, "nbformat": 3}),
                   "nbformat 3 notebook; strip-widgets reads nbformat 4"),
    "cells not a list": (json.dumps({**notebook(), "cells": {}}), "malformed nbformat 4"),
    "output not an object": (json.dumps({**notebook(), "cells": [{"outputs": [1]}]}),
                             "malformed nbformat 4"),
}


def bad_notebook(tmp_path, kind: str):
    content, problem = BAD_NOTEBOOKS[kind]
    path = tmp_path / "bad.ipynb"
    if content == "folder":
        path.mkdir()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    return path, problem


@pytest.mark.parametrize("kind", BAD_NOTEBOOKS)
def test_strip_widgets_names_the_bad_file(tmp_path, capsys, kind):
    path, problem = bad_notebook(tmp_path, kind)
    assert main(["strip-widgets", str(path)]) == 2
    assert f"{path}: {problem}" in one_line_error(capsys, "strip-widgets")


def test_strip_widgets_rewrites_nothing_when_one_file_is_bad(tmp_path, capsys):
    good = tmp_path / "good.ipynb"
    good.write_text(json.dumps(notebook()))
    before = good.read_bytes()
    bad, problem = bad_notebook(tmp_path, "nbformat 3")
    assert main(["strip-widgets", str(good), str(bad)]) == 2
    assert f"{bad}: {problem}" in one_line_error(capsys, "strip-widgets")
    assert good.read_bytes() == before
    assert main(["strip-widgets", str(good), str(good)]) == 0    # the good one alone: stripped
    assert "widgets" not in json.loads(good.read_text())["metadata"]


def test_python_m_xaikit_exits_2_without_a_traceback(tmp_path):
    missing = tmp_path / "missing.ipynb"
    run = subprocess.run([sys.executable, "-m", "xaikit", "strip-widgets", str(missing)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 2
    assert run.stderr == f"xaikit strip-widgets: error: {missing}: no such file\n"
