"""``python -m xaikit lab`` (``make lab``): JupyterLab on the workbook, wherever it is started.

Two things stop or confuse a plain ``jupyter lab`` where workshops run it: in a container, as
root, it refuses to start ("Running as root is not recommended. Use --allow-root to bypass."),
and on a machine without a display it tries to open a browser that is not there. This module
builds the command for the machine it runs on, says what it added and why, and leaves the
rest (the address with its token, printed by Jupyter itself) to JupyterLab.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

__all__ = ["has_display", "lab_command"]


def has_display() -> bool:
    """Whether a browser window can open here: always on macOS and Windows, on other systems
    only with an X11 or Wayland display (``DISPLAY`` / ``WAYLAND_DISPLAY``)."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def lab_command(folder: str = "notebooks", *, port: int | None = None,
                browser: bool | None = None, euid: int | None = None,
                extra: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """The JupyterLab command line for this machine, and one note per option it added.

    Parameters
    ----------
    folder : str
        The folder JupyterLab opens (the notebooks).
    port : int, optional
        Port to listen on (default: JupyterLab's, 8888 or the next free one).
    browser : bool, optional
        Open a browser; default: only where there is a display (:func:`has_display`).
        Without one, Jupyter prints the address with its token to copy.
    euid : int, optional
        Effective user id (default: this process's); 0 (root, as in Docker images and many
        hosted machines) adds ``--allow-root``.
    extra : sequence of str
        More JupyterLab options, passed on unchanged.

    Returns
    -------
    (list of str, list of str)
        The command (``python -m jupyterlab ...``) and the notes to print before it starts.
    """
    command = [sys.executable, "-m", "jupyterlab", folder]
    notes = []
    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else -1
    if euid == 0:
        command.append("--allow-root")
        notes.append("running as root (as in containers): starting JupyterLab with --allow-root")
    if browser is None:
        browser = has_display()
        if not browser:
            notes.append("no display here: no browser is opened; open the address with its "
                         "token that JupyterLab prints below (http://localhost:PORT/lab?token=...)")
    if not browser:
        command.append("--no-browser")
    if port is not None:
        command.append(f"--port={port}")
    command.extend(extra)
    return command, notes


def main(folder: str = "notebooks", port: int | None = None, browser: bool | None = None,
         extra: Sequence[str] = ()) -> int:
    """Print the notes, then become JupyterLab (``os.execv``: Ctrl-C and signals reach the
    server itself, and no parent process is left behind); elsewhere run it and return its
    exit status."""
    if not os.path.isdir(folder):
        print(f"xaikit lab: error: no folder {folder!r}", file=sys.stderr)
        return 2
    command, notes = lab_command(folder, port=port, browser=browser, extra=extra)
    for note in notes:
        print(f"xaikit lab: {note}", flush=True)
    if os.name == "posix":
        os.execv(command[0], command)
    import subprocess

    return subprocess.call(command)
