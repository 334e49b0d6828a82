"""Is the brain there? The robot's view of its thinking host. Pure Python, no ROS.

With the graph split over two hosts (`gamgin up --role robot|brain`), the robot hears the
brain's stages only through the network. Every stage publishes its health on /diagnostics
at 1 Hz, so the brain's heartbeat is already on the wire: the brain is *away* once none of
its stages has been heard for ``away_after_s``. None, not any: a single stage that restarts
(the standby takes over in ~1 s) is not a lost brain; a box switched off or a Wi-Fi link
gone silences them all at once. DDS itself is no help within seconds: a peer that vanishes
without saying goodbye stays in the graph until its participant lease ends (20 s by
default), and its readers stay "matched" all that time.

The brain is *back* when its dialogue stage (the LLM) is heard again: its heartbeat
crossed the network, so its participant's endpoints are matched again and the next
transcript reaches it. (The ROS graph's node names of remote readers lagged by tens of
seconds on a loaded machine, so they are not waited for.) The robot then hands turns to
it again.

Times are seconds of a monotonic clock.
"""

from __future__ import annotations

from dataclasses import dataclass, field

UNKNOWN, PRESENT, AWAY = "unknown", "present", "away"

# What the robot says, in the household's language (stt.yaml home_language).
NOTICE = {"zh": "我的大脑暂时不在，我还能帮你开关电器。",
          "en": "My brain is away for now. I can still switch your devices."}
AWAY_REPLY = {"zh": "我的大脑不在，现在只能帮你开关电器。",
              "en": "My brain is away; right now I can only switch your devices."}


def words(table: dict[str, str], lang: str) -> str:
    return table.get(lang) or table["en"]


@dataclass
class BrainChange:
    state: str  # PRESENT or AWAY
    reason: str
    silent_s: float  # how long the brain had not been heard when this was decided


@dataclass
class BrainLink:
    nodes: tuple[str, ...] = ("stt", "llm", "tts")  # the brain's stages, by node name
    dialogue: str = "llm"  # the one that must be there for the brain to answer
    # none of them heard for this long: away. Diagnostics come at 1 Hz from each of several
    # processes, so under 1.5 s a loaded box (a heartbeat late by a few hundred ms in each)
    # would be taken for gone; the spoken notice must come within 3 s of the loss.
    away_after_s: float = 2.0
    # at start, the brain's host may still be booting: say nothing before this
    startup_grace_s: float = 20.0
    state: str = UNKNOWN
    since: float = 0.0  # when `state` began
    _started: float | None = None
    _last_heard: float | None = None
    heard: dict[str, float] = field(default_factory=dict)

    def heartbeat(self, node: str, now: float) -> None:
        """A /diagnostics message from `node` (its bare name) arrived."""
        if self._started is None:
            self._started = now
        if node in self.nodes:
            self.heard[node] = now
            self._last_heard = now

    def silent_s(self, now: float) -> float:
        origin = self._last_heard if self._last_heard is not None else self._started
        return now - origin if origin is not None else 0.0

    def tick(self, now: float, ready: bool = True) -> BrainChange | None:
        """Call periodically (10 Hz); `ready`: anything else the node waits for. A change of
        state is returned once, when it happens."""
        if self._started is None:
            self._started = now
        silent = self.silent_s(now)
        if self.state != AWAY and silent > self.away_after_s:
            if self._last_heard is None and now - self._started < self.startup_grace_s:
                return None  # never heard yet: give the brain's host time to start
            return self._set(AWAY, now, silent, "not heard" if self._last_heard is not None
                             else "never heard since start")
        dialogue = self.heard.get(self.dialogue)
        if (self.state != PRESENT and dialogue is not None
                and now - dialogue <= self.away_after_s and ready):
            return self._set(PRESENT, now, silent, f"heard, {self.dialogue} too")
        return None

    def _set(self, state: str, now: float, silent: float, reason: str) -> BrainChange:
        self.state, self.since = state, now
        names = ", ".join(self.nodes)
        return BrainChange(state, f"{names}: {reason}", silent)

    @property
    def away(self) -> bool:
        return self.state == AWAY

    def status(self, now: float) -> str:
        """For /diagnostics: what a person should read."""
        if self.state == AWAY:
            return (f"brain away for {now - self.since:.0f} s (no {'/'.join(self.nodes)} heard):"
                    " device commands answered locally")
        if self.state == PRESENT:
            return "brain present"
        return "brain not answering yet (its LLM not heard)"


# A fallback stage is brought up (configure, activate) while the brain is away and unloaded
# (deactivate, cleanup) when it is back: one lifecycle transition at a time.
_STEPS = {("unconfigured", "active"): "configure", ("inactive", "active"): "activate",
          ("active", "unconfigured"): "deactivate", ("inactive", "unconfigured"): "cleanup"}


def next_transition(current: str, goal: str) -> str | None:
    """The lifecycle transition that takes a node from state `current` toward `goal`
    ("active" or "unconfigured"); None when it is there (or in a state we do not drive,
    e.g. finalized)."""
    return _STEPS.get((current, goal))
