"""Carrying out intent answers on a controller (pure Python, simulated backend on disk)."""

from __future__ import annotations

import pytest

from gamgin_devices.backends.simulated import SimulatedBackend
from gamgin_devices.core import DeviceController
from gamgin_devices.executor import execute
from gamgin_devices.intents import DeviceIntents


@pytest.fixture
def setup(tmp_path):
    di = DeviceIntents(warm=False)
    ctl = DeviceController(di.registry, SimulatedBackend(tmp_path / "s.json"))
    ctl.start()
    return di, ctl


def test_relative_delta_is_resolved_against_the_controller(setup):
    di, ctl = setup
    ctl.set_param("bedroom_ac", "temperature", 29.5)
    answer = di.handle("把空调调高两度", "zh")  # no state: a delta
    assert execute(answer, ctl, di) == answer.speech
    assert ctl.status("bedroom_ac").params["temperature"] == 30  # saturates at max


def test_music_without_a_player_says_so(setup):
    di, ctl = setup
    heard = []
    answer = di.handle("play some music", "en")
    assert execute(answer, ctl, di, None) == "Sorry, the music player is not running."
    assert execute(answer, ctl, di, lambda c, q: heard.append((c, q))) == answer.speech
    assert heard == [("play", "")]


def test_backend_failure_is_spoken(setup, tmp_path):
    di, _ = setup
    blocker = tmp_path / "f"
    blocker.write_text("")
    ctl = DeviceController(di.registry, SimulatedBackend(blocker / "s.json"))
    ctl.start()
    said = execute(di.handle("打开风扇", "zh"), ctl, di)
    assert said.startswith("抱歉") and ctl.status("fan").on is False
