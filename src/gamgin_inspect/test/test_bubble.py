import pytest
from gamgin_inspect.bubble import SpeechBubble, wrap
from visualization_msgs.msg import Marker

from gamgin_common import qos, testing
from gamgin_interfaces.msg import TokenChunk, Transcript


def test_wrap_counts_cjk_as_two_columns_and_breaks_english_at_spaces():
    assert wrap("把客厅的灯打开", 6) == ["把客厅", "的灯打", "开"]
    assert wrap("turn on the living room light", 12) == ["turn on the", "living room", "light"]


def test_bubble_follows_the_current_turn_and_ignores_late_older_messages():
    b = SpeechBubble(width=40)
    b.on_transcript(3, "turn on the light")
    b.on_tokens(3, "Sure, ")
    b.on_tokens(3, "the light is on.")
    assert b.text() == "› turn on the light\n金坚: Sure, the light is on."
    assert b.on_transcript(4, "讲个笑话")
    assert not b.on_tokens(3, "late")
    assert b.text() == "› 讲个笑话"


def test_a_long_answer_keeps_its_newest_lines_visible():
    b = SpeechBubble(width=10, max_lines=3)
    b.on_transcript(1, "hi")
    b.on_tokens(1, " ".join(f"w{i}" for i in range(30)))
    lines = b.text().splitlines()
    assert len(lines) == 3 and lines[0] == "› hi" and lines[-1].endswith("w29")


@pytest.mark.integration
def test_marker_is_published_on_a_turn(probe, node_env, tmp_path):
    markers = probe.collect(Marker, "/gamgin/speech_bubble", qos.EVENTS)
    transcript = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
    tokens = probe.publisher(TokenChunk, "/gamgin/tokens", qos.TOKENS)
    with testing.NodeProcess("gamgin_inspect", "bubble_node", "speech_bubble", node_env,
                             params={"frame_id": "robot_base"}, log_dir=str(tmp_path)) as node:
        assert probe.wait_for_subscribers(tokens, 1, 20), node.log()
        assert probe.wait_for_subscribers(transcript, 1, 20), node.log()
        transcript.publish(Transcript(turn_id=9, text="what time is it", is_final=True))
        tokens.publish(TokenChunk(turn_id=9, seq=0, text="It is noon."))
        tokens.publish(TokenChunk(turn_id=9, seq=1, text="", is_final=True))
        assert testing.wait_for(lambda: any("It is noon." in m.text for m in markers), 10)
    last = [m for m in markers if "It is noon." in m.text][-1]
    assert last.header.frame_id == "robot_base" and last.type == Marker.TEXT_VIEW_FACING
    assert last.text.startswith("› what time is it") and last.pose.position.z > 0
