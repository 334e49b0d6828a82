"""QoS of every gamgin topic, chosen on purpose and in one place (README: "QoS").

- Audio streams are published RELIABLE: a lost mic chunk is a hole in what Whisper hears
  and a lost speech chunk is a click; on one host, reliability costs next to nothing. Depths
  cover bursts: the TTS produces faster than real time.
- Audio across Wi-Fi (a split graph, README "One robot, two hosts") is received BEST_EFFORT
  (``MIC_AUDIO_IN``, ``SPEECH_AUDIO_IN``), KEEP_LAST, VOLATILE. A reliable reader holds
  every newer chunk back until a lost one is resent (head-of-line blocking: on a lossy
  link, the next heartbeat/NACK round trip, tens of ms to seconds), so the wake word, the
  VAD and the speaker would fall behind real time; a late chunk is worth less than none.
  Best effort keeps order (an older sample arriving after a newer one is discarded) and
  what is lost stays lost: the Opus decoder conceals it (codec.py) and seq shows the gap.
  The reader decides: a best-effort reader matches the reliable writers and any tool, and
  on one host readers stay reliable (no loss at all). Chosen by GAMGIN_AUDIO_QOS
  (reliable | best_effort); unset, best effort exactly when ROS_STATIC_PEERS names
  another host (`gamgin up --peer`).
- Events (wake, transcript, tokens) are RELIABLE + VOLATILE: a late joiner must not
  act on an old command.
- States (turn state, device states) are TRANSIENT_LOCAL: a node that starts or
  restarts learns the current state at once. Depth 20, not 1: transitions come in quick
  bursts (CANCELLED then LISTENING) and a subscriber must see each; a late joiner gets
  the recent ones too, which is harmless since every node ignores turns older than its own.
- Diagnostics are reliable with a small depth, as in ROS, but TRANSIENT_LOCAL: a monitor
  that starts (`gamgin status`) or a node that restarts is seen at once, not at the next
  1 Hz tick after discovery; volatile subscribers (rqt, diagnostic_aggregator) still match.
"""

from __future__ import annotations

import os

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy


def _profile(depth: int, latched: bool = False,
             reliability: ReliabilityPolicy = ReliabilityPolicy.RELIABLE) -> QoSProfile:
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=reliability,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


def audio_link_reliability(env: dict[str, str] | None = None) -> ReliabilityPolicy:
    """How audio readers receive: best effort when the graph spans hosts (above)."""
    env = os.environ if env is None else env
    choice = env.get("GAMGIN_AUDIO_QOS", "").strip().lower()
    if choice not in ("", "reliable", "best_effort"):
        raise ValueError(f"GAMGIN_AUDIO_QOS={choice!r}: reliable or best_effort")
    if choice == "best_effort" or (not choice and env.get("ROS_STATIC_PEERS", "").strip()):
        return ReliabilityPolicy.BEST_EFFORT
    return ReliabilityPolicy.RELIABLE


MIC_AUDIO = _profile(250)  # 5 s of 20 ms chunks: a reader stalled by a busy CPU loses nothing
SPEECH_AUDIO = _profile(500)  # a whole synthesized answer can arrive in a burst
# the stages' readers of the two streams that may cross Wi-Fi (the depth still covers a
# reader stalled by a busy CPU: that loss is the history's, not the link's)
MIC_AUDIO_IN = _profile(250, reliability=audio_link_reliability())
SPEECH_AUDIO_IN = _profile(500, reliability=audio_link_reliability())
REFERENCE_AUDIO = _profile(250)  # speaker -> mic echo reference: always on the robot
EVENTS = _profile(20)  # wake, transcript
TOKENS = _profile(500)  # a reply's tokens arrive faster than TTS consumes them
STATE = _profile(20, latched=True)  # turn state
DEVICE_STATE = _profile(64, latched=True)  # one latched sample per device change
DIAGNOSTICS = _profile(10, latched=True)


def matching(node, topic: str, depth: int = 100) -> QoSProfile:
    """A subscription profile that matches a topic's current publishers, for tools that
    subscribe to whatever is there (Foxglove bridge, recorder): reliable unless one of them
    is best effort; transient local when every one latches, so the current state arrives."""
    infos = node.get_publishers_info_by_topic(topic)
    best_effort = any(i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos)
    latched = bool(infos) and all(
        i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=depth,
        reliability=ReliabilityPolicy.BEST_EFFORT if best_effort else ReliabilityPolicy.RELIABLE,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE)
