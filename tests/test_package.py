"""Packaging promises: cheap import, CLI entry points."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("tensorflow", "keras", "panel", "bokeh", "holoviews")


def test_import_loihi_core_does_not_import_heavy_libraries():
    code = (
        "import sys, pkgutil, importlib, loihi_core\n"
        "for m in pkgutil.walk_packages(loihi_core.__path__, 'loihi_core.'):\n"
        "    if m.name.split('.')[-1].startswith('_'):\n"
        "        continue\n"
        "    if m.name.startswith(('loihi_core.training.',)):\n"
        "        continue\n"
        "    importlib.import_module(m.name)\n"
        f"print(sorted(h for h in {HEAVY!r} if h in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_cli_version_and_help():
    out = subprocess.run([sys.executable, "-m", "loihi_core", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("loihi-studio 0.")
    out = subprocess.run([sys.executable, "-m", "loihi_core", "--help"],
                         capture_output=True, text=True, check=True)
    assert "COMMAND" in out.stdout
