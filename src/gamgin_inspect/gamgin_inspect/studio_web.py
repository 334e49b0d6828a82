"""Foxglove Studio 1.48 as a web page on loopback, for the browser test. Pure Python.

npm's `@foxglove/studio-base` 1.48.0 carries the whole app compiled by webpack (`assets/`,
a UMD bundle of 56 MB plus its lazily loaded chunks and workers) that expects React 17 as
globals; only the web entry is not published. `scripts/setup` unpacks the bundle and React's
UMD files (`npm pack`, pinned versions) into VIEWER_DIR; this module serves them together with
gamgin's entry (`src/gamgin_inspect/web/`: index.html + studio.js). No build step.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from pathlib import Path

from gamgin_common.paths import workspace_root

STUDIO_VERSION = "1.48.0"
# what scripts/setup puts there (npm pack, then the files below)
REQUIRED = ("assets/index.js", "vendor/react.production.min.js",
            "vendor/react-dom.production.min.js")


def viewer_dir() -> Path:
    """$GAMGIN_STUDIO_WEB, else data/cache/viewer/foxglove-studio-<version> of the workspace."""
    if os.environ.get("GAMGIN_STUDIO_WEB"):
        return Path(os.environ["GAMGIN_STUDIO_WEB"])
    root = workspace_root() or Path.cwd()
    return root / "data" / "cache" / "viewer" / f"foxglove-studio-{STUDIO_VERSION}"


def entry_dir() -> Path:
    """gamgin's web entry: the source tree's web/ (symlink install), else the share dir."""
    here = Path(__file__).resolve().parents[1] / "web"
    if (here / "studio.js").is_file():
        return here
    from ament_index_python.packages import get_package_share_directory

    return Path(get_package_share_directory("gamgin_inspect")) / "web"


def missing_files(root: Path | None = None) -> list[str]:
    root = root or viewer_dir()
    return [f for f in REQUIRED if not (root / f).is_file()]


class _Handler(http.server.SimpleHTTPRequestHandler):
    entry: Path = Path()

    def translate_path(self, path: str) -> str:
        # index.html and studio.js from gamgin's entry; everything else from the bundle
        name = path.split("?", 1)[0].split("#", 1)[0].lstrip("/") or "index.html"
        if name in ("index.html", "studio.js"):
            return str(self.entry / name)
        return super().translate_path(path)

    def log_message(self, format: str, *args) -> None:  # quiet: the test has its own log
        pass


class StudioServer:
    """An HTTP server on 127.0.0.1 (a free port) serving Foxglove Studio; a context manager."""

    def __init__(self, root: Path | None = None, port: int = 0) -> None:
        self.root = root or viewer_dir()
        missing = missing_files(self.root)
        if missing:
            raise FileNotFoundError(
                f"Foxglove Studio {STUDIO_VERSION} web bundle incomplete in {self.root} "
                f"(missing {', '.join(missing)}): run scripts/setup")
        handler = type("Handler", (_Handler,), {"entry": entry_dir()})
        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", port), functools.partial(handler, directory=str(self.root)))
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, ws_url: str) -> str:
        """The page that opens a Foxglove WebSocket connection to ws_url at start."""
        return f"http://127.0.0.1:{self.port}/?ds=foxglove-websocket&ds.url={ws_url}"

    def __enter__(self) -> StudioServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5.0)
