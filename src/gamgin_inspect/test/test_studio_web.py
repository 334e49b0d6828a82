"""The page server of the browser test: gamgin's web entry over the npm bundle."""

import urllib.request

import pytest

from gamgin_inspect import studio_web


def test_the_entry_is_served_with_the_bundle_and_a_deep_link_to_the_bridge(tmp_path):
    for name in studio_web.REQUIRED:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"// {name}")
    with studio_web.StudioServer(tmp_path) as web:
        url = web.url("ws://127.0.0.1:8765")
        page = urllib.request.urlopen(url, timeout=5).read().decode()
        entry = urllib.request.urlopen(f"http://127.0.0.1:{web.port}/studio.js", timeout=5).read()
        bundle = urllib.request.urlopen(f"http://127.0.0.1:{web.port}/assets/index.js",
                                        timeout=5).read()
    assert url.endswith("/?ds=foxglove-websocket&ds.url=ws://127.0.0.1:8765")
    assert '<script src="assets/index.js"></script>' in page  # ours, not the bundle's
    assert b"FoxgloveWebSocketDataSourceFactory" in entry
    assert bundle == b"// assets/index.js"


def test_a_missing_bundle_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="scripts/setup"):
        studio_web.StudioServer(tmp_path)
