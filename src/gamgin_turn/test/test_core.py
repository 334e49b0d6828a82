from gamgin_turn.core import CANCELLED, IDLE, LISTENING, SPEAKING, THINKING, TurnTracker

S = 1_000_000_000


def states(t: TurnTracker) -> list[tuple[int, int]]:
    return [(s.turn_id, s.state) for s in t.drain()[0]]


def full_turn(t: TurnTracker, turn: int, t0: int) -> None:
    t.on_wake(turn, t0, t0)
    t.on_transcript(turn, False, t0 + 1 * S, "turn on", t0 + S // 2, 0, t0 + 1 * S)
    t.on_transcript(turn, True, t0 + 2 * S + 50_000_000, "turn on the light", t0 + S // 2,
                    t0 + 2 * S, t0 + 2 * S)
    t.on_token(turn, t0 + 2 * S + 100_000_000, "OK, ", False, "intent", "", t0 + 2 * S)
    t.on_audio(turn, t0 + 2 * S + 300_000_000, True, False, t0 + 2 * S)
    t.on_playback(turn, "started", t0 + 2 * S + 320_000_000, t0 + 2 * S)
    t.on_token(turn, t0 + 2 * S + 400_000_000, "done.", True, "intent", "stop", t0 + 2 * S)
    t.on_audio(turn, t0 + 3 * S, False, True, t0 + 3 * S)
    t.on_playback(turn, "finished", t0 + 4 * S, t0 + 4 * S)


def test_a_whole_turn_goes_through_every_state_and_traces_the_latency():
    t = TurnTracker()
    full_turn(t, 5, 100 * S)
    changes, (tr,) = t.drain()
    assert [c.state for c in changes] == [LISTENING, THINKING, SPEAKING, IDLE]
    assert tr.outcome == "answered" and tr.route == "intent" and tr.reply_text == "OK, done."
    assert tr.summary() == {"final_transcript": 50.0, "first_token": 100.0, "first_audio": 300.0,
                            "playback_start": 320.0}


def test_a_new_wake_cancels_the_busy_turn_first():
    t = TurnTracker()
    t.on_wake(1, 0, 0)
    t.on_transcript(1, True, S, "tell me a story", 0, S, S)
    t.on_playback(1, "started", 2 * S, 2 * S)
    t.on_wake(2, 3 * S, 3 * S)
    got, traces = t.drain()
    assert [(s.turn_id, s.state) for s in got][-2:] == [(1, CANCELLED), (2, LISTENING)]
    assert [tr.outcome for tr in traces] == ["cancelled"]


def test_late_messages_of_an_old_turn_change_nothing():
    t = TurnTracker()
    t.on_wake(1, 0, 0)
    t.on_wake(2, S, S)
    t.drain()
    t.on_transcript(1, True, S, "old", 0, S, S)
    t.on_playback(1, "started", S, S)
    assert states(t) == [] and t.state == LISTENING and t.turn_id == 2


def test_timeouts_end_a_hanging_turn():
    t = TurnTracker(listen_timeout_s=5)
    t.on_wake(1, 0, 0)
    t.tick(4 * S)
    assert t.state == LISTENING
    t.tick(6 * S)
    assert t.state == IDLE and t.drain()[1][0].outcome == "no speech"
    t.on_wake(2, 10 * S, 10 * S)
    t.on_transcript(2, True, 11 * S, "hi", 10 * S, 11 * S, 11 * S)
    t.on_token(2, 11 * S, "", True, "llm", "stop", 11 * S)  # an empty reply: nothing to play
    t.tick(12 * S)
    assert t.state == THINKING  # the TTS has not said whether anything will play
    t.on_audio(2, 12 * S, False, True, 12 * S)  # its stream ends empty
    t.tick(12 * S + 1)
    assert t.state == IDLE and t.drain()[1][-1].outcome == "answered"


def test_a_slow_tts_is_waited_for_and_a_silent_one_is_given_up_on():
    t = TurnTracker(tail_s=10)
    t.on_transcript(3, True, S, "switch on the light", 0, S, S)
    t.on_token(3, S, "OK, the light is on.", True, "intent", "stop", S)
    t.tick(5 * S)  # a loaded CPU: the first sentence takes seconds
    assert t.state == THINKING
    t.on_audio(3, 6 * S, True, False, 6 * S)
    t.on_playback(3, "started", 6 * S, 6 * S)
    t.on_audio(3, 7 * S, False, True, 7 * S)
    t.on_playback(3, "finished", 8 * S, 8 * S)
    assert t.drain()[1][-1].outcome == "answered"
    t.on_transcript(4, True, 9 * S, "hello", 8 * S, 9 * S, 9 * S)
    t.on_token(4, 9 * S, "Hi!", True, "llm", "stop", 9 * S)
    t.tick(19 * S + 1)  # the TTS never answered
    assert t.state == IDLE


def test_empty_final_transcript_ends_the_turn_and_interrupt_cancels():
    t = TurnTracker()
    t.on_wake(1, 0, 0)
    t.on_transcript(1, True, S, "  ", 0, S, S)
    assert t.state == IDLE and t.drain()[1][0].outcome == "no speech"
    assert not t.interrupt(2 * S)
    t.on_wake(2, 3 * S, 3 * S)
    assert t.interrupt(4 * S)
    assert t.state == CANCELLED and t.drain()[1][-1].outcome == "cancelled"


def test_typed_input_without_a_wake_starts_a_turn():
    t = TurnTracker()
    t.on_transcript(7, True, S, "把客厅的灯打开", 0, S, S)
    assert [s for _, s in states(t)] == [LISTENING, THINKING]
    assert t.turn_id == 7 and t.state == THINKING


def test_without_a_speaker_a_turn_ends_when_its_reply_and_speech_are_complete():
    """`gamgin up --no-audio`: nobody reports playback; the turn must not wait for it."""
    t = TurnTracker(await_playback=False)
    t.on_transcript(3, True, 2 * S, "turn on the light", S, 2 * S, 2 * S)  # typed, no wake
    t.on_token(3, 2 * S + 100_000_000, "OK, ", False, "intent", "", 2 * S + 100_000_000)
    t.on_audio(3, 2 * S + 300_000_000, True, False, 2 * S + 300_000_000)
    assert t.state == SPEAKING
    t.on_token(3, 2 * S + 400_000_000, "done.", True, "intent", "stop", 2 * S + 400_000_000)
    assert t.state == SPEAKING  # the last sentence is still being synthesized
    t.on_audio(3, 2 * S + 600_000_000, False, True, 2 * S + 600_000_000)
    changes, (tr,) = t.drain()
    assert [(c.state, c.reason) for c in changes][-1] == (IDLE, "reply complete (no speaker)")
    assert [c.state for c in changes] == [LISTENING, THINKING, SPEAKING, IDLE]
    assert tr.outcome == "answered" and tr.end == 2 * S + 600_000_000
    assert tr.summary()["first_audio"] == 300.0 and tr.summary()["playback_start"] == -1.0
    t.tick(60 * S)  # long after: no timeout, nothing more
    assert t.drain() == ([], [])


def test_without_a_speaker_a_tts_stream_that_never_ends_still_ends_the_turn():
    t = TurnTracker(await_playback=False, tail_s=2)
    t.on_transcript(4, True, S, "hello", 0, S, S)
    t.on_audio(4, S, True, False, S)
    t.on_token(4, S, "hi", True, "llm", "stop", S)
    t.tick(2 * S)
    assert t.state == SPEAKING
    t.tick(4 * S)
    assert t.state == IDLE and t.drain()[1][0].outcome == "answered"


def test_with_a_speaker_the_turn_still_waits_for_playback():
    t = TurnTracker()
    t.on_transcript(5, True, S, "hello", 0, S, S)
    t.on_token(5, S, "hi", True, "llm", "stop", S)
    t.on_audio(5, S, True, False, S)
    t.on_audio(5, S, False, True, S)
    assert t.state == THINKING and t.trace is not None


def test_a_typed_turn_is_timed_from_when_its_text_arrived():
    t = TurnTracker()
    t.on_transcript(6, True, 10 * S, "hello", 0, 0, 10 * S)  # typed: no speech_end
    t.on_token(6, 10 * S + 80_000_000, "hi", True, "llm", "stop", 10 * S)
    t.on_audio(6, 10 * S + 200_000_000, True, False, 10 * S)
    assert t.trace is not None and t.trace.summary() == {
        "final_transcript": 0.0, "first_token": 80.0, "first_audio": 200.0,
        "playback_start": -1.0}


def test_a_reply_heard_before_its_transcript_still_ends_the_turn():
    """A busy turn node can hear the fast path's whole reply, and its speech, before the
    typed transcript that asked for it (CI: the headless turn then never ended)."""
    t = TurnTracker(await_playback=False)
    t.on_token(9, 2 * S, "好的，客厅灯已打开。", True, "intent", "stop", 2 * S)
    t.on_audio(9, 2 * S + 50_000_000, True, False, 2 * S + 50_000_000)
    t.on_audio(9, 2 * S + 60_000_000, False, True, 2 * S + 60_000_000)
    assert t.trace is None and t.drain() == ([], [])  # nothing of a turn not begun
    t.on_transcript(9, True, S, "把客厅的灯打开", 0, 0, 2 * S + 100_000_000)
    changes, (tr,) = t.drain()
    assert [c.state for c in changes] == [LISTENING, THINKING, SPEAKING, IDLE]
    assert tr.outcome == "answered" and tr.route == "intent" and "客厅灯" in tr.reply_text


def test_with_a_speaker_early_playback_events_are_replayed_too():
    t = TurnTracker()
    t.on_token(4, S, "hi", True, "llm", "stop", S)
    t.on_playback(4, "started", S, S)
    t.on_playback(4, "finished", 2 * S, 2 * S)
    t.on_transcript(4, True, S, "hello", 0, 0, 2 * S)
    changes, (tr,) = t.drain()
    assert [c.state for c in changes] == [LISTENING, THINKING, SPEAKING, IDLE]
    assert tr.outcome == "answered"


def test_early_events_of_older_or_many_turns_are_not_kept():
    t = TurnTracker()
    t.on_transcript(10, True, S, "hello", 0, 0, S)
    t.on_token(3, S, "old", True, "llm", "stop", S)  # an old turn's: stale, dropped
    for turn in range(20, 30):
        t.on_token(turn, S, "x", False, "llm", "", S)
    assert sorted(t._early) == [26, 27, 28, 29]
    t.on_transcript(28, True, S, "hello", 0, 0, S)
    assert sorted(t._early) == [29] and t.trace is not None and t.trace.reply_text == "x"
