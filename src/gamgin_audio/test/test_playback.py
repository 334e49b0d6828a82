import time

import numpy as np

from gamgin_audio.playback import SpeechQueue


def make(events=None):
    return SpeechQueue(10.0, 1000, on_event=(events.append if events is not None else None))


def test_plays_in_order_then_silence_and_reports_start_and_finish():
    ev = []
    q = make(ev)
    q.push(1, np.full(30, 0.1, np.float32))
    q.push(1, np.full(30, 0.2, np.float32), end_of_stream=True)
    out = np.concatenate([q.read(20) for _ in range(4)])
    assert np.allclose(out[:30], 0.1) and np.allclose(out[30:60], 0.2) and np.all(out[60:] == 0)
    assert [e.kind for e in ev] == ["started", "finished"] and ev[0].turn_id == 1


def test_newer_turn_flushes_older_and_older_chunks_are_dropped():
    ev = []
    q = make(ev)
    q.push(1, np.full(100, 0.1, np.float32))
    q.read(10)
    assert q.push(2, np.full(10, 0.3, np.float32))
    assert not q.push(1, np.full(10, 0.1, np.float32))  # stale
    assert np.allclose(q.read(10), 0.3)
    assert q.dropped_stale == 1
    assert "flushed" in [e.kind for e in ev]


def test_cancel_silences_at_once_and_blocks_late_chunks_of_that_turn():
    q = make()
    q.push(3, np.full(500, 0.5, np.float32))
    q.read(10)
    q.cancel(3)
    assert np.all(q.read(50) == 0)
    assert not q.push(3, np.full(10, 0.5, np.float32))
    assert q.push(4, np.full(10, 0.5, np.float32))  # the next turn plays


def test_overflow_drops_and_counts_instead_of_growing_without_bound():
    q = SpeechQueue(0.1, 1000)
    assert q.push(1, np.zeros(80, np.float32))
    assert not q.push(1, np.zeros(80, np.float32))
    assert q.dropped_overflow == 1 and abs(q.queued_seconds - 0.08) < 1e-9


def test_a_stream_whose_end_was_lost_ends_as_stalled_and_its_late_chunks_are_dropped():
    events: list = []
    q = SpeechQueue(10.0, 1000, events.append, stall_s=0.5)
    q.push(5, np.ones(100, np.float32))
    q.read(100)
    assert [e.kind for e in events] == ["started"]
    time.sleep(0.1)
    q.read(50)  # the audio ran out, but a reply may still be written: not yet
    assert [e.kind for e in events] == ["started"]
    time.sleep(0.5)
    q.read(50)
    assert [(e.turn_id, e.kind) for e in events] == [(5, "started"), (5, "stalled")]
    assert q.stalled == 1
    assert not q.push(5, np.ones(10, np.float32))  # the end came too late: dropped
    q.read(50)
    assert len(events) == 2
    q.push(6, np.ones(10, np.float32), end_of_stream=True)  # the next turn plays as usual
    q.read(50)
    assert [e.kind for e in events[2:]] == ["started", "finished"]


def test_a_slow_stream_is_not_cut_while_its_chunks_keep_coming():
    events: list = []
    q = SpeechQueue(10.0, 1000, events.append, stall_s=0.2)
    for _ in range(4):  # each chunk drains before the next: gaps shorter than stall_s
        q.push(3, np.ones(20, np.float32))
        q.read(40)
        time.sleep(0.1)
    q.push(3, np.zeros(0, np.float32), end_of_stream=True)
    q.read(40)
    assert [e.kind for e in events] == ["started", "finished"]


def test_a_long_answer_pushed_at_once_finishes_and_does_not_stall():
    """All of a 0.5 s answer queued in one burst, its end included, played in blocks that
    end exactly where it does: "finished" on the read after, even long past stall_s."""
    events: list = []
    q = SpeechQueue(10.0, 1000, events.append, stall_s=0.1)
    q.push(4, np.ones(500, np.float32), end_of_stream=True)
    time.sleep(0.2)
    for _ in range(6):
        q.read(100)
    assert [e.kind for e in events] == ["started", "finished"]
