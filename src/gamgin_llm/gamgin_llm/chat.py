"""The types every part of the dialogue stage shares, and the one backend interface.

Pure Python. A backend turns a list of chat messages into a stream of ``Delta``s and
raises ``BackendError`` with a ``kind`` the dialogue turns into a spoken apology.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

Message = dict[str, Any]  # OpenAI chat message: {"role": ..., "content": ...}


@dataclass
class ToolCall:
    """A request to run one registered tool."""

    name: str  # tool name as registered, e.g. "set_power"
    arguments: dict[str, Any] = field(default_factory=dict)  # JSON object for the tool
    id: str = ""  # the backend's call id (native tool calling); "" for parsed calls


@dataclass
class Delta:
    """One step of a streamed completion."""

    text: str = ""  # new reply text (usually one token)
    tool_calls: list[ToolCall] = field(default_factory=list)  # native calls, complete, at the end
    finish_reason: str = ""  # set on the last delta: "stop", "length", "tool_calls"


class BackendError(RuntimeError):
    """A completion failed. ``kind`` picks the spoken line: "unreachable", "timeout",
    "model" (missing/corrupt/not loaded), "overflow" (context too small), "error"."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class ChatBackend(Protocol):
    name: str
    native_tools: bool  # True: pass tool schemas to the model and read tool_calls back

    def load(self) -> None:
        """Load the model / check the endpoint. Raise BackendError with how to fix it."""

    def stream(self, messages: list[Message], *, tools: list[dict] | None, max_tokens: int,
               temperature: float, cancelled: Callable[[], bool],
               text_only: bool = False) -> Iterator[Delta]:
        """Yield deltas; stop soon after ``cancelled()`` turns true (checked between tokens).
        ``text_only``: the reply must not be a tool call (a backend that can, keeps "{" out)."""

    def count_tokens(self, text: str) -> int:
        """Tokens this text costs in the prompt (exact or a close over-estimate)."""

    def close(self) -> None:
        """Free the model / connections."""
