"""Plug-ins named in params files as ``package.module:Name``. Pure Python, no ROS."""

from __future__ import annotations

import importlib
from typing import Any


def import_dotted(dotted: str) -> Any:
    """The object ``package.module:Name`` names; ValueError with the reason if it cannot be
    found (so a node can report it on /diagnostics)."""
    mod_name, sep, attr = dotted.partition(":")
    if not sep or not mod_name or not attr:
        raise ValueError(f"expected 'package.module:Name', got {dotted!r}")
    try:
        return getattr(importlib.import_module(mod_name), attr)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load {dotted!r}: {exc} (is the package installed "
                         f"and the workspace sourced?)") from exc
