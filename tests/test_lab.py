"""``make lab`` (``python -m xaikit lab``): the command it builds as root and as a user, with and
without a display, and a real JupyterLab server started that way answering on loopback."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import stop

from xaikit.lab import lab_command

ROOT = Path(__file__).resolve().parent.parent


def test_root_gets_allow_root_and_says_so():
    command, notes = lab_command("notebooks", euid=0, browser=True)
    assert command[1:4] == ["-m", "jupyterlab", "notebooks"] and "--allow-root" in command
    assert any("as root" in note and "--allow-root" in note for note in notes)


def test_a_user_gets_no_allow_root():
    command, notes = lab_command("notebooks", euid=1000, browser=True)
    assert "--allow-root" not in command and "--no-browser" not in command and notes == []


def test_without_a_display_no_browser_is_opened(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(sys, "platform", "linux")
    command, notes = lab_command("notebooks", euid=1000)
    assert "--no-browser" in command and any("token" in note for note in notes)
    monkeypatch.setenv("DISPLAY", ":0")
    assert "--no-browser" not in lab_command("notebooks", euid=1000)[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_the_server_starts_and_answers_on_loopback(tmp_path):
    port = _free_port()
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "JUPYTER_DATA_DIR": str(tmp_path)}
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "xaikit", "lab", "notebooks", "--port", str(port),
             "--ServerApp.ip=127.0.0.1", "--ServerApp.port_retries=0"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        address = re.compile(rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]{{16,}})")
        status, deadline = None, time.monotonic() + 60
        while status is None and time.monotonic() < deadline and server.poll() is None:
            printed = address.search(log.read_text())  # the address with its token, printed
            if printed is None:
                time.sleep(0.5)
                continue
            try:
                url = f"http://127.0.0.1:{port}/api/status?token={printed.group(1)}"
                with urllib.request.urlopen(url, timeout=2) as response:
                    status = json.loads(response.read())
            except OSError:
                time.sleep(0.5)
        text = log.read_text()
        assert status is not None, f"JupyterLab did not answer:\n{text[-2000:]}"
        assert "started" in status
        if os.geteuid() == 0:  # CI and containers: the case that failed before
            assert "starting JupyterLab with --allow-root" in text
        assert "no browser is opened" in text
    finally:
        stop(server)
