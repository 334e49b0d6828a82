"""The robot's view of its brain (gamgin_turn.brain), driven with explicit times."""

from gamgin_turn.brain import AWAY, PRESENT, UNKNOWN, BrainLink, next_transition
from gamgin_turn.core import CANCELLED, IDLE, SPEAKING, THINKING, TurnTracker


def beat(link: BrainLink, t: float, nodes=("stt", "llm", "tts")) -> None:
    for n in nodes:
        link.heartbeat(n, t)


def test_present_once_heard_and_ready_then_away_when_all_fall_silent():
    link = BrainLink(away_after_s=2.0)
    beat(link, 0.0, ("stt", "tts"))
    assert link.tick(0.1) is None  # heard, but the LLM (loading) cannot answer yet
    beat(link, 0.15)
    ch = link.tick(0.2)
    assert ch is not None and ch.state == PRESENT
    for t in range(1, 6):  # 1 Hz heartbeats keep it present
        beat(link, float(t))
        assert link.tick(t + 0.5) is None
    assert link.tick(6.9) is None  # 1.9 s of silence: a late heartbeat, not a lost brain
    ch = link.tick(7.1)
    assert ch is not None and ch.state == AWAY and 2.0 < ch.silent_s < 2.2
    assert link.tick(7.5) is None  # said once
    assert "away" in link.status(9.0)


def test_one_stage_restarting_is_not_a_lost_brain():
    link = BrainLink(away_after_s=2.0)
    beat(link, 0.0)
    link.tick(0.1)
    for t in range(1, 10):  # the llm is gone (restarting); stt and tts still beat
        beat(link, float(t), ("stt", "tts"))
        assert link.tick(t + 0.5) is None
    assert link.state == PRESENT


def test_robot_nodes_are_no_heartbeat_of_the_brain():
    link = BrainLink(away_after_s=2.0)
    beat(link, 0.0)
    link.tick(0.1)
    for t in range(1, 5):
        link.heartbeat("turn", float(t))
        link.heartbeat("devices", float(t))
    assert link.tick(4.5).state == AWAY


def test_back_when_heard_again():
    link = BrainLink(away_after_s=2.0)
    beat(link, 0.0)
    link.tick(0.1)
    assert link.tick(3.0).state == AWAY
    beat(link, 10.0, ("tts",))
    assert link.tick(10.05) is None  # its LLM not heard yet
    beat(link, 10.4, ("llm",))
    ch = link.tick(10.5)
    assert ch is not None and ch.state == PRESENT


def test_a_brain_never_heard_is_away_only_after_the_startup_grace():
    link = BrainLink(away_after_s=2.0, startup_grace_s=20.0)
    link.tick(0.0)
    assert link.tick(10.0) is None and link.state == UNKNOWN
    ch = link.tick(20.5)
    assert ch is not None and ch.state == AWAY and "never heard" in ch.reason


def test_lifecycle_steps_toward_the_goal():
    assert next_transition("unconfigured", "active") == "configure"
    assert next_transition("inactive", "active") == "activate"
    assert next_transition("active", "active") is None
    assert next_transition("active", "unconfigured") == "deactivate"
    assert next_transition("inactive", "unconfigured") == "cleanup"
    assert next_transition("unconfigured", "unconfigured") is None
    assert next_transition("finalized", "active") is None


def test_a_notice_is_a_turn_that_cancels_the_one_waiting_for_the_lost_brain():
    tr = TurnTracker()
    tr.on_wake(5, 1, 1)
    tr.on_transcript(5, True, 2, "讲个笑话", 1, 2, 2)
    assert tr.state == THINKING
    tr.drain()
    tr.on_notice(6, "我的大脑暂时不在", "brain-away notice", 3)
    states, traces = tr.drain()
    assert states[0].state == CANCELLED and traces[0].outcome == "cancelled"
    tr.on_audio(6, 4, True, True, 4)
    tr.on_playback(6, "started", 5, 5)
    assert tr.state == SPEAKING
    tr.on_playback(6, "finished", 6, 6)
    _, traces = tr.drain()
    assert tr.state == IDLE and traces[0].route == "brain-away notice"
    assert traces[0].outcome == "answered"
