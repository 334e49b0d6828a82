"""Conversation memory bounded by tokens, forgotten after idle time. Pure Python.

Oldest exchanges are dropped first: a 135M model cannot write a useful summary, and a
dropped exchange costs nothing to speak. The bound is in model tokens (the backend's
tokenizer), so it holds for Chinese and English alike.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from gamgin_llm.chat import Message


class ConversationMemory:
    def __init__(self, max_tokens: int, idle_reset_s: float,
                 count_tokens: Callable[[str], int],
                 clock: Callable[[], float] = time.monotonic, low_water: float = 0.5) -> None:
        self.max_tokens = max_tokens
        # Over the bound, drop down to low_water * max_tokens, not just under the bound:
        # every drop changes the prompt right after the cached head, so llama.cpp must
        # re-evaluate all of the memory (~700 tokens: seconds on 2 busy cores). Dropping
        # one exchange per turn would pay that on every turn of a long conversation.
        self.low_water = low_water
        self.idle_reset_s = idle_reset_s
        self.count_tokens = count_tokens
        self.clock = clock
        self._turns: deque[tuple[str, str, int]] = deque()  # (user, assistant, tokens)
        self._last = clock()
        self._lock = threading.Lock()
        self.dropped = 0  # exchanges forgotten to stay within max_tokens
        self.resets = 0

    def __len__(self) -> int:
        return len(self._turns)

    @property
    def tokens(self) -> int:
        return sum(t for _, _, t in self._turns)

    def add(self, user: str, assistant: str) -> None:
        cost = self.count_tokens(user) + self.count_tokens(assistant) + 8  # role markers
        with self._lock:
            self._turns.append((user, assistant, cost))
            self._last = self.clock()
            if sum(t for _, _, t in self._turns) > self.max_tokens:
                keep = self.max_tokens * self.low_water
                while self._turns and sum(t for _, _, t in self._turns) > keep:
                    self._turns.popleft()
                    self.dropped += 1

    def expire_if_idle(self) -> bool:
        """Forget everything after ``idle_reset_s`` without a turn (a new conversation)."""
        with self._lock:
            if (self._turns and self.idle_reset_s > 0
                    and self.clock() - self._last > self.idle_reset_s):
                self._turns.clear()
                self.resets += 1
                return True
        return False

    def reset(self) -> int:
        with self._lock:
            n = len(self._turns)
            self._turns.clear()
            self.resets += 1
            return n

    def recent_replies(self, n: int) -> list[str]:
        with self._lock:
            return [a for _, a, _ in list(self._turns)[-n:]]

    def messages(self, budget: int | None = None) -> list[Message]:
        """Newest exchanges that fit ``budget`` tokens, in chronological order."""
        with self._lock:
            turns = list(self._turns)
        out: list[Message] = []
        used = 0
        for user, assistant, cost in reversed(turns):
            if budget is not None and used + cost > budget:
                break
            used += cost
            out[:0] = [{"role": "user", "content": user},
                       {"role": "assistant", "content": assistant}]
        return out
