"""turn: owns turn/state (what every node follows), serves turn/interrupt, and publishes
a TurnTrace per finished turn on turn/trace."""

from __future__ import annotations

import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
from std_srvs.srv import Trigger

from gamgin_common import qos
from gamgin_common.stage import StageNode, run_stage
from gamgin_common.stamps import ns_of, time_msg
from gamgin_interfaces.msg import (
    AudioChunk,
    TokenChunk,
    Transcript,
    TurnState,
    TurnTrace,
    WakeEvent,
)
from gamgin_turn.core import STATE_NAMES, Trace, TurnTracker

PLAYBACK_KIND = {TurnState.SPEAKING: "started", TurnState.IDLE: "finished",
                 TurnState.CANCELLED: "flushed"}


class TurnNode(StageNode):
    def __init__(self) -> None:
        super().__init__("turn")
        p = self.declare_parameter
        self.tracker = TurnTracker(
            listen_timeout_s=float(p("listen_timeout_s", 12.0).value),
            think_timeout_s=float(p("think_timeout_s", 30.0).value),
            speak_timeout_s=float(p("speak_timeout_s", 120.0).value),
            tail_s=float(p("no_audio_tail_s", 10.0).value),
            await_playback=bool(p("await_playback", True).value))
        # The dialogue node: when it restarts (a new pid on /diagnostics) while a turn waits
        # for its answer, the final transcript it lost is sent again, once, to the new one.
        self.llm_node = str(p("llm_node", "llm").value)
        self._lock = threading.Lock()
        self.last: dict[str, float] = {}
        self._last_final: Transcript | None = None
        self._llm_pid = ""
        # (new pid, when seen, llm readers before, the transcript it lost)
        self._llm_restart: tuple[str, float, int, Transcript] | None = None
        self._llm_readers_before = 0

    def configure_stage(self) -> None:
        self.state_pub = self.stage_publisher(TurnState, "turn/state", qos.STATE)
        self.trace_pub = self.stage_publisher(TurnTrace, "turn/trace", qos.EVENTS)
        self.stage_subscription(WakeEvent, "wake", self._on_wake, qos.EVENTS)
        self.stage_subscription(Transcript, "transcript", self._on_transcript, qos.EVENTS)
        self.stage_subscription(TokenChunk, "tokens", self._on_token, qos.TOKENS)
        self.stage_subscription(AudioChunk, "audio/speech", self._on_audio, qos.SPEECH_AUDIO)
        self.stage_subscription(TurnState, "audio/playback", self._on_playback, qos.EVENTS)
        self.stage_service(Trigger, "turn/interrupt", self._on_interrupt)
        self.resend_pub = self.stage_publisher(Transcript, "transcript", qos.EVENTS)
        self.stage_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics,
                                qos.DIAGNOSTICS)
        self.timer = self.create_timer(0.1, self._tick)

    def activate_stage(self) -> None:
        self._publish_state(self.tracker.turn_id, TurnState.IDLE, "started")

    def cleanup_stage(self) -> None:
        self.destroy_timer(self.timer)

    # ------------------------------------------------------------------ events
    def _apply(self, fn, *args) -> None:
        with self._lock:
            fn(*args, time.time_ns())
            states, traces = self.tracker.drain()
        for s in states:
            self._publish_state(s.turn_id, s.state, s.reason)
        for tr in traces:
            self._publish_trace(tr)

    def _on_wake(self, m: WakeEvent) -> None:
        self._apply(self.tracker.on_wake, m.turn_id, ns_of(m.header.stamp))

    def _tick(self) -> None:
        self._apply(self.tracker.tick)
        self._resend_to_restarted_llm()

    def _llm_readers(self) -> tuple[int, int]:
        """(readers of `transcript` in the llm node, readers in all) as the graph knows them."""
        infos = self.get_subscriptions_info_by_topic(self.resend_pub.topic_name)
        return sum(i.node_name == self.llm_node for i in infos), len(infos)

    def _on_diagnostics(self, m: DiagnosticArray) -> None:
        fqn = f"{self.get_namespace().rstrip('/')}/{self.llm_node}"
        for st in m.status:
            vals = {kv.key: kv.value for kv in st.values}
            pid = vals.get("pid", "")
            if (st.name != fqn or vals.get("lifecycle") != "active" or not pid
                    or pid == self._llm_pid):
                continue
            final = self._last_final
            with self._lock:
                lost = final is not None and self.tracker.awaiting_reply(final.turn_id)
            if self._llm_pid and lost:  # restarted while a turn waited for its answer
                self._llm_restart = (pid, time.monotonic(), self._llm_readers_before, final)
            self._llm_pid = pid

    def _resend_to_restarted_llm(self) -> None:
        restart = self._llm_restart
        if restart is None:
            self._llm_readers_before = self._llm_readers()[0]
            return
        pid, seen_at, before, final = restart
        with self._lock:
            waiting = self.tracker.awaiting_reply(final.turn_id)
        if not waiting:  # answered after all, cancelled, or a newer turn: nothing to do
            self._llm_restart = None
            return
        # The new LLM's own reader must be known and matched, or the message is lost to it
        # too. The killed one's reader lingers in the graph until its DDS lease ends, so a
        # count of llm readers above the one before the crash, or 0.3 s, says it is there.
        llm_readers, n_readers = self._llm_readers()
        if (self.resend_pub.get_subscription_count() < n_readers or not llm_readers
                or (llm_readers <= before and time.monotonic() - seen_at < 0.3)):
            return
        self._llm_restart = None
        self.resend_pub.publish(final)
        self.health.count("transcripts_resent")
        self.get_logger().warning(f"turn {final.turn_id}: the LLM restarted (pid {pid}) before "
                               "answering; its final transcript is sent to it again")

    def _on_transcript(self, m: Transcript) -> None:
        if m.is_final and m.text.strip():
            self._last_final = m
        self._apply(self.tracker.on_transcript, m.turn_id, m.is_final, ns_of(m.header.stamp),
                    m.text, ns_of(m.speech_start), ns_of(m.speech_end))
        if m.is_final:
            with self._lock:
                tr = self.tracker.trace
                if tr is not None and tr.turn_id == m.turn_id:
                    tr.language = m.language

    def _on_token(self, m: TokenChunk) -> None:
        self._apply(self.tracker.on_token, m.turn_id, ns_of(m.header.stamp), m.text, m.is_final,
                    m.route, m.finish_reason)
        if m.route:  # which path answered (intent fast path, llm, ...), for /diagnostics
            self.health.value("route", f"{m.route} (turn {m.turn_id})", notify=True)

    def _on_audio(self, m: AudioChunk) -> None:
        self._apply(self.tracker.on_audio, m.turn_id, ns_of(m.header.stamp), len(m.data) > 0,
                    m.end_of_stream)

    def _on_playback(self, m: TurnState) -> None:
        kind = PLAYBACK_KIND.get(m.state)
        if kind:
            self._apply(self.tracker.on_playback, m.turn_id, kind, ns_of(m.header.stamp))

    def _on_interrupt(self, request: Trigger.Request, response: Trigger.Response):
        with self._lock:
            turn = self.tracker.turn_id
            response.success = self.tracker.interrupt(time.time_ns(), "interrupt service")
        self._apply(lambda now: None)
        response.message = (f"turn {turn} cancelled" if response.success
                            else "nothing to interrupt")
        return response

    # ------------------------------------------------------------------ output
    def _publish_state(self, turn_id: int, state: int, reason: str) -> None:
        msg = TurnState(turn_id=turn_id, state=state, reason=reason)
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.header.frame_id = "turn"
        self.state_pub.publish(msg)
        self.health.value("state", f"{STATE_NAMES[state]} (turn {turn_id})")
        self.get_logger().info(f"turn {turn_id}: {STATE_NAMES[state]} ({reason})")

    def _publish_trace(self, tr: Trace) -> None:
        msg = TurnTrace(turn_id=tr.turn_id, outcome=tr.outcome, route=tr.route,
                        user_text=tr.user_text, reply_text=tr.reply_text,
                        language=tr.language)
        for key in ("wake", "speech_start", "speech_end", "first_partial", "final_transcript",
                    "first_token", "first_audio", "playback_start", "end"):
            setattr(msg, key, time_msg(getattr(tr, key)))
        for key, ms in tr.summary().items():
            setattr(msg, f"{key}_ms", ms)
        msg.header.stamp = self.get_clock().now().to_msg()
        self.trace_pub.publish(msg)
        self.health.count(f"turns_{tr.outcome.replace(' ', '_')}")
        if msg.first_audio_ms >= 0:
            self.health.value("last_first_audio_ms", f"{msg.first_audio_ms:.0f}")


def main(args: list[str] | None = None) -> None:
    run_stage(TurnNode, args)


if __name__ == "__main__":
    main()
