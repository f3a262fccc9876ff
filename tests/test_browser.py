"""In a real browser: JupyterLab (headless, loopback only) opens a notebook with an explorer,
runs it, a slider is moved with the keyboard, and the explorer's figure changes.

Needs the system Chromium (Debian package ``chromium``; ``.ci/run`` installs it) driven by
Python Playwright with ``executable_path`` (no browser download). Skipped, saying so, only
where no Chromium executable is found. The server gets a temporary config, runtime, settings
and workspace folder and a copy of ``notebooks/``, so the committed notebooks are untouched;
news, update checks and the extension manager's PyPI queries are off, and the browser aborts
every request that is not to the loopback server.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from servers import stop

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
FIGURE = "img.xaikit-explorer-figure"
# The cell a learner runs in notebook 08 (section 2): the LRP explorer, gamma slider included.
CELLS = ["import xaikit as xk\nfrom xaikit.explorers import lrp_explorer\n\n"
         "xk.setup(0)\nmodel = xk.load_model()",
         "lrp_explorer(model)"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(CHROMIUM is None, reason="no Chromium executable on PATH "
                                 "(Debian: apt-get install chromium; .ci/run does this)")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _notebook(cells: list[str]) -> dict:
    return {"cells": [{"cell_type": "code", "execution_count": None, "metadata": {},
                       "outputs": [], "source": src} for src in cells],
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture()
def lab(tmp_path):
    """A JupyterLab server on a free loopback port; yields ``(base_url, token)``."""
    root = tmp_path / "notebooks"
    shutil.copytree(ROOT / "notebooks", root)
    (root / "explorer.ipynb").write_text(json.dumps(_notebook(CELLS)))
    config = tmp_path / "config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(json.dumps(
        {"disabledExtensions": {"@jupyterlab/apputils-extension:announcements": True}}))
    port, token = _free_port(), "xaikit-browser-test"
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(config),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "XAIKIT_MODEL": "vgg16-shapes",
           "XAIKIT_OFFLINE": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
               "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.extension_manager=readonly", "--LabApp.expose_app_in_browser=True",
               f"--LabApp.user_settings_dir={tmp_path / 'settings'}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}"]
    log = open(tmp_path / "lab.log", "w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("JupyterLab did not start:\n"
                                       + (tmp_path / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token
    finally:
        stop(server)
        log.close()


def _figure_src(page) -> str:
    return page.locator(FIGURE).first.get_attribute("src") or ""


def test_slider_move_changes_the_explorer_figure(lab, tmp_path):
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    base, token = lab
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith((base, "blob:", "data:"))
                       else route.abort())
            page.goto(f"{base}/lab/tree/explorer.ipynb?token={token}")
            page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')",
                                   timeout=120_000)
            page.wait_for_function("async () => { const w = window.jupyterapp.shell.currentWidget;"
                                   " if (!w || !w.sessionContext) return false;"
                                   " await w.context.ready; await w.sessionContext.ready;"
                                   " const k = w.sessionContext.session && w.sessionContext.session.kernel;"
                                   " return !!k && k.status === 'idle'; }",
                                   timeout=120_000, polling=500)      # kernel started and idle
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            seconds = float(os.environ.get("XAIKIT_BROWSER_TIMEOUT", 240))
            page.wait_for_selector(FIGURE, timeout=seconds * 1000)
            page.wait_for_function(f"document.querySelector('{FIGURE}').naturalWidth > 0",
                                   timeout=60_000)
            before_src = _figure_src(page)
            before = page.locator(FIGURE).first.screenshot()
            slider = page.locator(".widget-slider", has_text="gamma").first
            handle = slider.locator(".noUi-handle").first
            handle.focus()
            for _ in range(8):                              # gamma 0.25 -> 0.65
                page.keyboard.press("ArrowRight")
            readout = slider.locator(".widget-readout").first
            page.wait_for_function(
                "src => { const img = document.querySelector('" + FIGURE + "');"
                " return img && img.getAttribute('src') !== src && img.naturalWidth > 0; }",
                arg=before_src, timeout=120_000)
            page.wait_for_timeout(500)
            after = page.locator(FIGURE).first.screenshot()
            value = readout.inner_text()
        except PlaywrightError as error:
            page.screenshot(path=str(tmp_path / "failure.png"))
            log = (tmp_path / "lab.log").read_text()[-4000:]
            raise AssertionError(f"{error}\nscreenshot: {tmp_path / 'failure.png'}\n"
                                 f"JupyterLab log:\n{log}") from None
        finally:
            browser.close()
    assert value.strip() not in ("", "0.25") and float(value) > 0.25
    assert before != after, "the explorer's figure did not change after the slider moved"
