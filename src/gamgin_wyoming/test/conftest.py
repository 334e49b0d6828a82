"""Fixtures: Wyoming servers as real processes on loopback (gamgin_wyoming.services)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gamgin_wyoming import services


@pytest.fixture(scope="session")
def wy() -> SimpleNamespace:
    return SimpleNamespace(gamgin_server=services.gamgin_server,
                           faster_whisper_server=services.faster_whisper_server,
                           piper_server=services.piper_server, free_port=services.free_port)


@pytest.fixture(scope="module")
def gamgin_all(tmp_path_factory):
    with services.gamgin_server("--stt", "--tts", "--wake",
                                log_dir=str(tmp_path_factory.mktemp("wy"))) as srv:
        yield srv
        assert srv.alive(), srv.log()
