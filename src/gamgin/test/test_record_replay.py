"""gamgin record writes a rosbag2-style MCAP that decodes with its own schemas;
gamgin replay feeds its microphone audio back at the recorded pace."""

import subprocess
import time

import pytest

from gamgin_common import qos, testing
from gamgin_interfaces.msg import AudioChunk, Transcript

pytestmark = pytest.mark.integration


def test_record_then_replay_the_microphone(probe, node_env, tmp_path):
    bag = tmp_path / "talk.mcap"
    mic = probe.publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    transcript = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    rec = subprocess.Popen(["gamgin", "record", "-o", str(bag), "--seconds", "8"], env=node_env,
                           stdout=subprocess.PIPE, text=True)
    assert probe.wait_for_subscribers(mic, 1, 15) and probe.wait_for_subscribers(transcript, 1, 15)
    for seq in range(50):  # 1 s of 20 ms chunks, paced
        mic.publish(AudioChunk(seq=seq, sample_rate=16000, channels=1, encoding="s16le",
                               data=bytes([seq % 256, 0]) * 320))
        time.sleep(0.02)
    transcript.publish(Transcript(turn_id=3, text="讲个笑话", is_final=True))
    out, _ = rec.communicate(timeout=30)
    assert rec.returncode == 0, out
    assert "/gamgin/audio/mic 50" in out and "/gamgin/transcript 1" in out

    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(bag, "rb") as f:
        reader = make_reader(f, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        decoded = [(c.topic, m) for _, c, _, m in reader.iter_decoded_messages()]
        schemas = {s.name for s in reader.get_summary().schemas.values()}
    assert "gamgin_interfaces/msg/Transcript" in schemas, schemas  # as rosbag2 names it
    texts = [m.text for t, m in decoded if t == "/gamgin/transcript"]
    assert texts == ["讲个笑话"]  # decoded with the schema stored in the file

    got = probe.collect(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO)
    t0 = time.monotonic()
    replay = subprocess.run(["gamgin", "replay", str(bag)], env=node_env, capture_output=True,
                            text=True, timeout=60)
    assert replay.returncode == 0, replay.stderr
    assert testing.wait_for(lambda: len(got) == 50, 5)
    assert [c.seq for c in got] == list(range(50))
    assert [bytes(c.data)[0] for c in got] == [s % 256 for s in range(50)]
    span = got.arrivals[-1] - got.arrivals[0]
    assert 0.7 < span < 2.0, span  # recorded pace (~1 s), not a burst
    assert got[0].header.stamp.sec >= int(time.time()) - 60 and time.monotonic() - t0 < 30


def test_replay_refuses_a_missing_or_corrupt_file(node_env, tmp_path):
    missing = subprocess.run(["gamgin", "replay", str(tmp_path / "nope.mcap")], env=node_env,
                             capture_output=True, text=True, timeout=30)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    bad = tmp_path / "bad.mcap"
    bad.write_bytes(b"not an mcap file at all" * 10)
    corrupt = subprocess.run(["gamgin", "replay", str(bad)], env=node_env, capture_output=True,
                             text=True, timeout=30)
    assert corrupt.returncode == 1 and "cannot read" in corrupt.stderr


def test_record_to_an_unwritable_place_says_so(node_env, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    r = subprocess.run(["gamgin", "record", "-o", str(tmp_path / "a_file" / "x.mcap"),
                        "--seconds", "1"], env=node_env, capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr
