"""turn: owns turn/state (what every node follows), serves turn/interrupt, and publishes
a TurnTrace per finished turn on turn/trace.

On the robot of a split graph (``brain_watch``, set by `gamgin up --role robot`) it also
watches the brain's host (gamgin_turn.brain): when it is gone the robot says so with a
notice rendered ahead of time, wakes its fallback stages (a local STT and voice, lifecycle
nodes kept unconfigured until then) and sends what they hear to the devices node's local
intents; when the brain is back they are unloaded and turns go to it again."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from pathlib import Path

from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from gamgin_common import audio, qos
from gamgin_common.paths import data_dir
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
from gamgin_turn.brain import AWAY, AWAY_REPLY, NOTICE, PRESENT, BrainLink, next_transition, words
from gamgin_turn.core import STATE_NAMES, Trace, TurnTracker

TRANSITION_IDS = {"configure": Transition.TRANSITION_CONFIGURE,
                  "activate": Transition.TRANSITION_ACTIVATE,
                  "deactivate": Transition.TRANSITION_DEACTIVATE,
                  "cleanup": Transition.TRANSITION_CLEANUP}
AFTER = {"configure": "inactive", "activate": "active", "deactivate": "inactive",
         "cleanup": "unconfigured"}
TURN_EPOCH = 1735689600  # turn ids are deciseconds since then (as the wake node's)

# the robot's voice still rings in the room (and in the speaker's buffers) this long after
# playback "finished"; the fallback STT cannot tell it from the user's (see below)
OWN_VOICE_TAIL_NS = 800_000_000
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
        # the brain of a split graph (see the module docstring)
        self.brain_watch = bool(p("brain_watch", False).value)
        self.brain = BrainLink(
            nodes=tuple(p("brain_nodes", ["stt", "llm", "tts"]).value),
            dialogue=self.llm_node,
            away_after_s=float(p("brain_away_after_s", 2.0).value),
            startup_grace_s=float(p("brain_startup_grace_s", 20.0).value))
        self.local_stages = [s for s in p("local_stages", [""]).value if s]
        self.home_language = str(p("home_language", "zh").value)
        self.notice_dir = Path(str(p("notice_dir", "").value) or data_dir() / "cache" / "notices")
        self._notice: tuple[bytes, int] | None = None  # (s16le, rate) of the notice
        self._speaking, self._played_until_ns = False, 0  # the robot's own voice: audio/playback
        self._local_goal = "unconfigured"
        self._local_state: dict[str, str] = {}  # stage -> lifecycle state as last known
        self._local_busy: dict[str, float] = {}  # stage -> when its pending call was sent
        self._local_turns: dict[int, str] = {}  # turn -> language, answered on the robot
        self._brain_lost_at = 0.0
        self._close_outage = False  # the brain is back: tell it the outage's turns are over

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
        if self.brain_watch:
            self.speech_pub = self.stage_publisher(AudioChunk, "audio/speech", qos.SPEECH_AUDIO)
            self.command_pub = self.stage_publisher(Transcript, "devices/command", qos.EVENTS)
            self.local_tokens_pub = self.stage_publisher(TokenChunk, "local/tokens", qos.TOKENS)
            self.stage_subscription(Transcript, "local/transcript", self._on_local_transcript,
                                    qos.EVENTS)
            self.stage_subscription(TokenChunk, "devices/reply", self._on_device_reply,
                                    qos.TOKENS)
            self._lifecycle = {s: (self.create_client(ChangeState, f"{s}/change_state"),
                                   self.create_client(GetState, f"{s}/get_state"))
                               for s in self.local_stages}
            self.health.value("brain", self.brain.status(time.monotonic()))
            self.health.value("local_stages", ", ".join(self.local_stages) or "none")
            threading.Thread(target=self._load_notice, daemon=True,
                             name="turn-notice").start()

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
        if self.brain_watch:
            self._watch_brain()

    def _llm_readers(self) -> tuple[int, int]:
        """(readers of `transcript` in the llm node, readers in all) as the graph knows them."""
        infos = self.get_subscriptions_info_by_topic(self.resend_pub.topic_name)
        return sum(i.node_name == self.llm_node for i in infos), len(infos)

    def _on_diagnostics(self, m: DiagnosticArray) -> None:
        fqn = f"{self.get_namespace().rstrip('/')}/{self.llm_node}"
        if self.brain_watch:  # the brain's stages' 1 Hz health is its heartbeat
            now = time.monotonic()
            for st in m.status:
                name = st.name.rsplit("/", 1)[-1]
                if name in self.brain.nodes and name not in self.brain.heard:
                    self.get_logger().info(f"brain stage {name} heard")
                self.brain.heartbeat(name, now)
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
        if m.state == TurnState.SPEAKING:
            self._speaking = True
        elif kind:
            self._speaking, self._played_until_ns = False, ns_of(m.header.stamp)
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

    # ------------------------------------------------------------------ brain away
    def _watch_brain(self) -> None:
        now = time.monotonic()
        change = self.brain.tick(now)
        if change is not None:
            if change.state == AWAY:
                self._brain_lost_at = now - change.silent_s
                self.get_logger().warning(f"brain away ({change.reason}, silent "
                                          f"{change.silent_s:.1f} s): saying so, waking "
                                          f"{', '.join(self.local_stages) or 'no fallback'}")
                self.health.count("brain_lost")
                self._local_goal = "active"
                self._say_notice()
            elif change.state == PRESENT:
                if self._brain_lost_at:
                    self.get_logger().info(f"brain back after {now - self._brain_lost_at:.1f} s "
                                           f"({change.reason}): turns go to it again")
                    self.health.count("brain_back")
                self._local_goal = "unconfigured"
                self._close_outage = True
            self.health.value("brain", self.brain.status(now), notify=True)
        if self._close_outage:
            self._end_outage_turns()
        if self.brain.away:
            self.health.warn(self.brain.status(now))
            self.health.value("brain", self.brain.status(now))  # its age, not 0 s for ever
        elif self.health.message.startswith("brain away"):
            self.health.ok("ready")
        self._drive_local_stages(now)

    def _end_outage_turns(self) -> None:
        """After an outage the reliable writers deliver what the brain missed: the wake
        node's wakes reached its STT, which opened a window for a turn long over and gave the
        next utterance that turn (seen in test_brain_away.py; its answer then belonged to no
        turn). CANCELLED for the last turn ends every turn up to it in every node, whichever
        arrives first (stamps would need the two hosts' clocks in step). Sent once the robot
        is idle, so a local answer still playing is not cut."""
        with self._lock:
            if self.tracker.state not in (TurnState.IDLE, TurnState.CANCELLED):
                return
            turn_id = self.tracker.turn_id
        self._close_outage = False
        if turn_id:
            self._publish_state(turn_id, TurnState.CANCELLED,
                                "brain back: the turns of the outage are over")

    def _drive_local_stages(self, now: float) -> None:
        """Bring each fallback stage to the goal, one lifecycle transition at a time, as a
        lifecycle manager does; a stage that is not up yet, or failed, is asked again."""
        for stage, (change, get) in self._lifecycle.items():
            if now - self._local_busy.get(stage, -1e9) < 30.0:
                continue  # a call is pending (a voice loads in seconds on a busy robot)
            current = self._local_state.get(stage, "")
            if not change.service_is_ready():
                continue
            self._local_busy[stage] = now
            if not current:
                get.call_async(GetState.Request()).add_done_callback(
                    lambda f, s=stage: self._on_local_state(s, f))
                continue
            step = next_transition(current, self._local_goal)
            if step is None:
                self._local_busy.pop(stage, None)
                continue
            req = ChangeState.Request()
            req.transition.id = TRANSITION_IDS[step]
            change.call_async(req).add_done_callback(
                lambda f, s=stage, st=step: self._on_local_changed(s, st, f))

    def _on_local_state(self, stage: str, future) -> None:
        res = future.result()
        self._local_state[stage] = res.current_state.label if res is not None else ""
        self._local_busy.pop(stage, None)

    def _on_local_changed(self, stage: str, step: str, future) -> None:
        res = future.result()
        ok = res is not None and res.success
        self._local_state[stage] = AFTER[step] if ok else ""  # failed: ask its state again
        self._local_busy.pop(stage, None)
        self.get_logger().info(f"{stage}: {step} {'done' if ok else 'FAILED'}")
        self.health.value(f"{stage}_state", self._local_state[stage] or "unknown", notify=True)
        if not ok:
            self.health.count("local_stage_failures")

    def _notice_text(self) -> tuple[str, str]:
        lang = self.home_language if self.home_language in NOTICE else "en"
        return words(NOTICE, lang), lang

    def _load_notice(self) -> None:
        """Render the notice once (a child process: the voice's memory goes with it) and
        keep its samples, so saying it costs no synthesis when the brain is gone."""
        text, lang = self._notice_text()
        key = hashlib.sha1(f"{lang}:{text}".encode()).hexdigest()[:12]
        path = self.notice_dir / f"brain-away-{lang}-{key}.wav"
        try:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                t0 = time.monotonic()
                subprocess.run([sys.executable, "-m", "gamgin_tts.notice", str(path), text,
                                "--lang", lang], check=True, capture_output=True, timeout=120)
                self.get_logger().info(f"notice rendered in {time.monotonic() - t0:.1f} s: "
                                       f"{path}")
            import soundfile

            samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
            self._notice = (audio.encode(samples, "s16le"), int(rate))
            self.health.value("notice", path.name)
        except Exception as exc:  # the fallback still works; only the notice is missing
            reason = getattr(exc, "stderr", b"") or str(exc)
            self.get_logger().error(f"brain-away notice not rendered: {reason!r}")
            self.health.value("notice", f"missing: {exc}")

    def _say_notice(self) -> None:
        text, _ = self._notice_text()
        with self._lock:
            turn_id = max(self.tracker.turn_id + 1, int((time.time() - TURN_EPOCH) * 10))
        self._apply(self.tracker.on_notice, turn_id, text, "brain-away notice")
        notice = self._notice
        if notice is None:
            return  # nothing to play: the turn ends by its no-audio tail
        data, rate = notice
        step = rate // 5 * 2  # 200 ms of s16le per chunk, as the TTS sends
        chunks = [data[i:i + step] for i in range(0, len(data), step)]
        for seq, chunk in enumerate(chunks):
            msg = AudioChunk(header=Header(frame_id="notice"), turn_id=turn_id, seq=seq,
                             sample_rate=rate, channels=1, encoding="s16le", data=chunk,
                             end_of_stream=seq == len(chunks) - 1)
            msg.header.stamp = self.get_clock().now().to_msg()
            self.speech_pub.publish(msg)
        self.get_logger().info(f"turn {turn_id}: said {text!r} "
                               f"({time.monotonic() - self._brain_lost_at:.2f} s after the "
                               "brain was last heard)")

    def _on_local_transcript(self, m: Transcript) -> None:
        """What the robot's own STT heard while the brain is away: to the devices node.
        Speech that began while the robot spoke, or just after, is its own voice: the
        fallback STT, woken while the notice plays, missed the speaker's events."""
        start = ns_of(m.speech_start)
        if self._speaking or 0 < start < self._played_until_ns + OWN_VOICE_TAIL_NS:
            if m.is_final:
                self.get_logger().info(f"turn {m.turn_id}: local transcript {m.text!r} "
                                       "dropped: it began while the robot was speaking")
                self.health.count("local_own_voice_dropped")
            return
        self._on_transcript(m)
        if not m.is_final or not m.text.strip():
            return
        self._local_turns[m.turn_id] = m.language or self.home_language
        for old in [t for t in self._local_turns if t < m.turn_id - 100]:
            del self._local_turns[old]
        self.command_pub.publish(m)

    def _on_device_reply(self, m: TokenChunk) -> None:
        """The devices node's answer to a turn heard locally: spoken by the local voice;
        anything but a device command gets "my brain is away"."""
        lang = self._local_turns.pop(m.turn_id, None)
        if lang is None:
            return  # a typed command of someone else's
        done = m.route == "intent" and m.text.strip()
        out = TokenChunk(header=Header(frame_id="turn"), turn_id=m.turn_id, seq=0,
                         text=m.text if done else words(AWAY_REPLY, lang), is_final=True,
                         finish_reason="stop", route="local-intent" if done else "brain-away")
        out.header.stamp = self.get_clock().now().to_msg()
        self.local_tokens_pub.publish(out)
        self._on_token(out)

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
