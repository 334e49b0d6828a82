"""tts_node with encoding opus (a brain's voice for a robot across Wi-Fi), as a real process
over real DDS: the answer arrives as one gapless Opus stream that decodes to its speech."""

from __future__ import annotations

import numpy as np
import pytest

from gamgin_common import codec, qos, testing
from gamgin_interfaces.msg import AudioChunk, TokenChunk

pytestmark = pytest.mark.integration

ANSWER = "好的，电视打开了。The TV is on now."


def test_speech_is_published_as_opus(probe, node_env, tmp_path):
    speech = probe.collect(AudioChunk, "/gamgin/voice/audio/speech", qos.SPEECH_AUDIO)
    with testing.NodeProcess("gamgin_tts", "tts_node", "tts", node_env, namespace="/gamgin/voice",
                             params={"engine_zh": "espeak", "encoding": "opus",
                                     "opus_bitrate": 24000},
                             log_dir=str(tmp_path)) as tts:
        tokens = probe.publisher(TokenChunk, "/gamgin/voice/tokens", qos.TOKENS)
        assert probe.wait_for_subscribers(tokens, 1, 30), tts.log()
        tokens.publish(TokenChunk(turn_id=3, seq=0, text=ANSWER, route="llm"))
        tokens.publish(TokenChunk(turn_id=3, seq=1, text="", is_final=True,
                                  finish_reason="stop", route="llm"))
        assert testing.wait_for(lambda: any(c.end_of_stream for c in list(speech)), 30), tts.log()
    chunks = [c for c in list(speech) if c.turn_id == 3]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert {(c.encoding, c.sample_rate) for c in chunks} == {("opus", 24000)}  # espeak 22050 up
    assert "".join(c.text for c in chunks) == ANSWER
    dec = codec.ChunkDecoder()
    x = np.concatenate([dec(c)[1] for c in chunks])
    seconds = len(x) / 24000
    assert 1.5 < seconds < 8 and testing.loud_seconds(x, 24000) > 1.0
    assert sum(len(c.data) for c in chunks) < seconds * 48000 / 8  # s16le: 48000 B/s
    assert dec.concealed_frames == 0


def test_on_a_lossy_link_the_end_of_a_stream_is_said_twice(probe, node_env, tmp_path):
    """Best-effort readers (GAMGIN_AUDIO_QOS, or static peers: another host): one lost end
    would leave the robot "speaking", so an empty end marker follows on the next seq."""
    speech = probe.collect(AudioChunk, "/gamgin/lossy/audio/speech", qos.SPEECH_AUDIO)
    env = dict(node_env, GAMGIN_AUDIO_QOS="best_effort")
    with testing.NodeProcess("gamgin_tts", "tts_node", "tts", env, namespace="/gamgin/lossy",
                             params={"engine_zh": "espeak", "encoding": "opus"},
                             log_dir=str(tmp_path)) as tts:
        tokens = probe.publisher(TokenChunk, "/gamgin/lossy/tokens", qos.TOKENS)
        assert probe.wait_for_subscribers(tokens, 1, 30), tts.log()
        tokens.publish(TokenChunk(turn_id=4, seq=0, text="The TV is on now.", route="llm"))
        tokens.publish(TokenChunk(turn_id=4, seq=1, text="", is_final=True,
                                  finish_reason="stop", route="llm"))
        assert testing.wait_for(
            lambda: sum(c.end_of_stream for c in list(speech) if c.turn_id == 4) >= 2,
            30), tts.log()
    chunks = [c for c in list(speech) if c.turn_id == 4]
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    first_end = next(i for i, c in enumerate(chunks) if c.end_of_stream)
    assert first_end == len(chunks) - 2 and len(chunks[-1].data) == 0
    dec = codec.ChunkDecoder()
    for c in chunks[:first_end] + chunks[-1:]:  # the real end lost: the marker ends it
        dec(c)
    assert dec.concealed_frames > 0
