"""Helpers for tests that start a local server process (JupyterLab)."""
from __future__ import annotations

import subprocess


def stop(process: subprocess.Popen, timeout: float = 20) -> None:
    """Terminate ``process``, and kill it if it has not exited after ``timeout`` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
