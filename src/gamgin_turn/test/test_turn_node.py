"""The turn node over real DDS: states follow the events, the trace comes out, the
interrupt service cancels."""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from std_srvs.srv import Trigger

from gamgin_common import qos, testing
from gamgin_interfaces.msg import (
    AudioChunk,
    TokenChunk,
    Transcript,
    TurnState,
    TurnTrace,
    WakeEvent,
)

pytestmark = pytest.mark.integration


def stamp(msg, t_ns: int):
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(t_ns, 1_000_000_000)
    return msg


def test_turn_states_trace_and_interrupt(probe, node_env, tmp_path):
    states = probe.collect(TurnState, "/gamgin/turn/state", qos.STATE)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    pubs = {name: probe.publisher(t, f"/gamgin/{name}", q) for name, t, q in [
        ("wake", WakeEvent, qos.EVENTS), ("transcript", Transcript, qos.EVENTS),
        ("tokens", TokenChunk, qos.TOKENS), ("audio/speech", AudioChunk, qos.SPEECH_AUDIO),
        ("audio/playback", TurnState, qos.EVENTS)]}
    with testing.NodeProcess("gamgin_turn", "turn_node", "turn", node_env,
                             log_dir=str(tmp_path)) as node:
        for pub in pubs.values():
            assert probe.wait_for_subscribers(pub, 1, 20), node.log()
        now = time.time_ns()
        pubs["wake"].publish(stamp(WakeEvent(turn_id=11, keyword="金坚"), now))
        end = Transcript(turn_id=11, text="turn on the light", is_final=True)
        end.speech_end.sec, end.speech_end.nanosec = divmod(now + 1_000_000_000, 1_000_000_000)
        pubs["transcript"].publish(stamp(end, now + 1_050_000_000))
        # topics are not ordered with each other: keep the causal order a real graph has
        # (tokens that overtake the wake belong to no turn yet, and the trace has no route)
        assert testing.wait_for(lambda: (11, TurnState.THINKING) in
                                [(s.turn_id, s.state) for s in states], 10), node.log()
        pubs["tokens"].publish(stamp(TokenChunk(turn_id=11, text="OK.", route="intent"),
                                     now + 1_100_000_000))
        pubs["tokens"].publish(stamp(TokenChunk(turn_id=11, seq=1, is_final=True,
                                                finish_reason="stop"), now + 1_110_000_000))
        # ... and the reply's route is known before its audio (a sample sent right after
        # matching can wait for a DDS heartbeat; the node reports the route it saw)
        assert testing.wait_for(lambda: any(
            kv.key == "route" and kv.value == "intent (turn 11)"
            for st in probe.diagnostics_of(diags, "/gamgin/turn") for kv in st.values),
            10), node.log()
        pubs["audio/speech"].publish(stamp(AudioChunk(turn_id=11, sample_rate=16000, channels=1,
                                                      encoding="s16le", data=b"\0\0" * 160),
                                           now + 1_300_000_000))
        time.sleep(0.3)
        pubs["audio/playback"].publish(stamp(TurnState(turn_id=11, state=TurnState.SPEAKING),
                                             now + 1_320_000_000))
        assert testing.wait_for(lambda: (11, TurnState.SPEAKING) in
                                [(s.turn_id, s.state) for s in states], 10), node.log()
        pubs["audio/playback"].publish(stamp(TurnState(turn_id=11, state=TurnState.IDLE),
                                             now + 2_000_000_000))
        assert testing.wait_for(lambda: len(traces) >= 1, 10), node.log()
        pubs["wake"].publish(stamp(WakeEvent(turn_id=12, keyword="金坚"), time.time_ns()))
        assert testing.wait_for(lambda: any(s.turn_id == 12 for s in states), 10)
        reply = probe.call(Trigger, "/gamgin/turn/interrupt", Trigger.Request())
        assert testing.wait_for(lambda: len(traces) >= 2, 10)
    seq = [(s.turn_id, s.state) for s in states if s.turn_id == 11]
    assert seq == [(11, TurnState.LISTENING), (11, TurnState.THINKING), (11, TurnState.SPEAKING),
                   (11, TurnState.IDLE)]
    tr = traces[0]
    assert tr.outcome == "answered" and tr.route == "intent" and tr.reply_text == "OK."
    assert abs(tr.first_audio_ms - 300.0) < 0.01 and abs(tr.final_transcript_ms - 50.0) < 0.01
    assert reply.success and "12" in reply.message
    assert traces[1].turn_id == 12 and traces[1].outcome == "cancelled"
    assert (states[-1].turn_id, states[-1].state) == (12, TurnState.CANCELLED)
