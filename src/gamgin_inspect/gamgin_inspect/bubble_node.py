"""RViz speech bubble: a text Marker above the robot showing what it heard and says."""

from __future__ import annotations

from builtin_interfaces.msg import Duration
from visualization_msgs.msg import Marker

from gamgin_common import qos
from gamgin_common.stage import StageNode, run_stage
from gamgin_inspect.bubble import SpeechBubble
from gamgin_interfaces.msg import TokenChunk, Transcript


class BubbleNode(StageNode):
    def __init__(self) -> None:
        super().__init__("speech_bubble")
        p = self.declare_parameter
        self.frame_id = str(p("frame_id", "base_link").value)
        self.height = float(p("height_m", 0.6).value)
        self.text_size = float(p("text_size_m", 0.06).value)
        self.hold_s = float(p("hold_s", 10.0).value)
        self.bubble = SpeechBubble(width=int(p("width_chars", 36).value),
                                   max_lines=int(p("max_lines", 8).value))
        self.health.value("frame_id", self.frame_id)

    def configure_stage(self) -> None:
        self.pub = self.stage_publisher(Marker, "speech_bubble", qos.EVENTS)
        self.stage_subscription(Transcript, "transcript", self._on_transcript, qos.EVENTS)
        self.stage_subscription(TokenChunk, "tokens", self._on_tokens, qos.TOKENS)

    def _on_transcript(self, msg: Transcript) -> None:
        if self.bubble.on_transcript(msg.turn_id, msg.text):
            self._publish()

    def _on_tokens(self, msg: TokenChunk) -> None:
        if self.bubble.on_tokens(msg.turn_id, msg.text) and (msg.text or msg.is_final):
            self._publish()

    def _publish(self) -> None:
        m = Marker()
        m.header.frame_id = self.frame_id
        m.header.stamp = self.get_clock().now().to_msg()
        m.ns, m.id = "gamgin_speech", 0
        m.type, m.action = Marker.TEXT_VIEW_FACING, Marker.ADD
        m.pose.position.z = self.height
        m.pose.orientation.w = 1.0
        m.scale.z = self.text_size
        m.color.r = m.color.g = m.color.b = m.color.a = 1.0
        m.text = self.bubble.text()
        m.lifetime = Duration(sec=int(self.hold_s), nanosec=int(self.hold_s % 1 * 1e9))
        self.pub.publish(m)
        self.health.count("markers")


def main(args: list[str] | None = None) -> None:
    run_stage(BubbleNode, args)


if __name__ == "__main__":
    main()
