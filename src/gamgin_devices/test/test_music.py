"""Music library and player (pure), and music_node on a PulseAudio null sink."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from std_msgs.msg import String

from gamgin_common import qos, testing
from gamgin_devices.music import MusicLibrary, MusicPlayer
from gamgin_interfaces.msg import TokenChunk, Transcript, TurnState

RATE = 22050
TONES = {"周杰伦 - 晴天.wav": 660.0, "Adele - Hello.flac": 440.0, "jazz/Take Five.ogg": 550.0,
         "jazz/So What.mp3": 770.0}


def tone(freq: float, seconds: float, rate: int = RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.fixture
def library(tmp_path) -> Path:
    root = tmp_path / "music"
    for name, freq in TONES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        # libsndfile's MP3 writer is broken at 22.05 kHz (MPEG-2); CD rate it is
        rate = 44100 if path.suffix == ".mp3" else RATE
        sf.write(str(path), tone(freq, 8.0, rate), rate)
    (root / "notes.txt").write_text("not music")
    return root


def dominant_hz(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[int(np.argmax(spec))])


def test_library_reads_names_and_searches(library):
    lib = MusicLibrary(library)
    labels = sorted(t.label() for t in lib.tracks)
    assert labels == ["Adele - Hello", "jazz - So What", "jazz - Take Five", "周杰伦 - 晴天"]
    assert [t.title for t in lib.search("周杰伦")] == ["晴天"]
    assert [t.artist for t in lib.search("adele")] == ["Adele"]
    assert [t.title for t in lib.search("take five")] == ["Take Five"]
    assert [t.title for t in lib.search("jazz")] == ["So What", "Take Five"]
    assert lib.search("nobody") == [] and len(lib.search("")) == 4
    assert MusicLibrary(library / "missing").tracks == []


def read_for(player: MusicPlayer, seconds: float, block: int = 960) -> np.ndarray:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(player.read(block))
        time.sleep(block / player.out_rate / 2)  # faster than real time, like a device would
    return np.concatenate(out)


def test_player_plays_ducks_skips_and_stops(library):
    player = MusicPlayer(MusicLibrary(library), 48000, volume=1.0, duck_gain=0.2)
    try:
        assert "nothing found" in player.command("play", "nobody")
        assert player.command("play", "周杰伦").startswith("playing")
        assert testing.wait_for(lambda: player._buffered > 4800, 5)
        x = read_for(player, 0.5)
        loud = np.abs(x[-4800:]).max()
        assert loud > 0.4 and abs(dominant_hz(x[-9600:], 48000) - 660) < 10
        player.duck(True)
        x = read_for(player, 0.3)
        assert np.abs(x[-4800:]).max() < 0.25 * loud  # ducked to ~20 %
        player.duck(False)
        player.command("pause")
        assert not read_for(player, 0.1).any()
        player.command("resume")
        player.command("play", "")  # whole library, in order
        assert player.current.artist == "Adele"
        player.command("next")
        assert player.current.label() == "jazz - So What"  # an mp3
        assert testing.wait_for(lambda: player._buffered > 4800, 5)
        x = read_for(player, 0.3)
        assert abs(dominant_hz(x[-9600:], 48000) - 770) < 10
        player.command("stop")
        assert player.state == "stopped" and not player.read(960).any()
        with pytest.raises(ValueError):
            player.command("dance")
    finally:
        player.close()


@pytest.mark.integration
def test_voice_command_plays_music_on_the_virtual_speaker(pulse, probe, node_env, library,
                                                          tmp_path):
    cmd = probe.publisher(Transcript, "/gamgin/devices/command", qos.EVENTS)
    playback = probe.publisher(TurnState, "/gamgin/audio/playback", qos.EVENTS)
    replies = probe.collect(TokenChunk, "/gamgin/devices/reply", qos.TOKENS)
    states = probe.collect(String, "/gamgin/music/state", qos.STATE)

    def say(text: str, lang: str) -> str:
        n = len(replies)
        cmd.publish(Transcript(text=text, language=lang, is_final=True, source="typed"))
        assert testing.wait_for(lambda: len(replies) > n, 10)
        return replies[-1].text

    with testing.null_sink("gamgin_test_speaker") as sink, testing.NodeProcess(
        "gamgin_devices", "music_node", "music", node_env,
        params={"pulse_sink": sink, "library_dir": str(library), "volume": 1.0,
                "duck_gain": 0.2}, log_dir=str(tmp_path),
    ) as music, testing.NodeProcess(
        "gamgin_devices", "devices_node", "devices", node_env,
        params={"state_file": str(tmp_path / "state.json")}, log_dir=str(tmp_path),
    ) as devices:
        assert testing.wait_for(lambda: any("ready" in m.data for m in states), 20), music.log()
        assert probe.wait_for_subscribers(cmd, timeout=20), devices.log()
        assert probe.wait_for_subscribers(playback, timeout=20), music.log()
        with testing.Recorder(f"{sink}.monitor", rate=16000) as rec:
            time.sleep(0.5)
            silent = len(rec.samples())
            # the devices node may not have discovered the player yet: then it honestly
            # says so ("没有运行"); ask again like a person would
            assert testing.wait_for(lambda: "周杰伦" in say("放一首周杰伦的歌", "zh"), 10,
                                    interval=0.5), [r.text for r in replies]
            time.sleep(2.0)
            playing = rec.samples()
            playback.publish(TurnState(turn_id=1, state=TurnState.SPEAKING))  # robot speaks
            time.sleep(1.0)
            ducked = rec.samples()
            playback.publish(TurnState(turn_id=1, state=TurnState.IDLE))
            time.sleep(0.5)
            assert say("stop the music", "en") == "OK, music stopped."
            time.sleep(1.0)
            stopped_at = len(rec.samples())
            time.sleep(1.0)
            after = rec.samples()
        # the dialogue node's music tools say "action" instead of "command"
        direct = probe.publisher(String, "/gamgin/music/command", qos.EVENTS)
        assert probe.wait_for_subscribers(direct, count=1, timeout=10)
        direct.publish(String(data=json.dumps({"action": "play", "query": "adele"})))
        assert testing.wait_for(lambda: json.loads(states[-1].data)["artist"] == "Adele", 10)
        direct.publish(String(data=json.dumps({"action": "stop"})))
        assert testing.wait_for(lambda: json.loads(states[-1].data)["state"] == "stopped", 10)
    before = playing[silent:]
    assert len(before) > 16000, music.log()
    assert np.abs(playing[:silent]).max(initial=0) < 0.01  # nothing before the command
    loud = float(np.abs(before[-8000:]).max())
    assert loud > 0.3, (loud, music.log())
    hz = dominant_hz(before[-8000:], 16000)
    assert abs(hz - 660) < 10, hz  # the 周杰伦 track
    quiet = float(np.abs(ducked[-8000:]).max())
    assert quiet < 0.35 * loud, (quiet, loud)
    assert np.abs(after[stopped_at:]).max(initial=0) < 0.01, "music stops on command"
