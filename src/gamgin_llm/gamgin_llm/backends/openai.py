"""Any OpenAI-compatible streaming chat endpoint (llama.cpp server, vLLM, Ollama, ...).

Uses httpx2 (already in the environment as a dependency of huggingface_hub, pinned in
requirements/constraints.txt): server-sent events are read line by line, so a cancel or a
stalled server is noticed between tokens.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator

import httpx2 as httpx

from gamgin_llm.chat import BackendError, Delta, Message, ToolCall

_OVERFLOW_HINTS = ("context", "too long", "exceed", "maximum")


class OpenAIBackend:
    name = "openai"

    def __init__(self, base_url: str = "http://127.0.0.1:8080/v1", model: str = "",
                 api_key: str = "", api_key_env: str = "OPENAI_API_KEY",
                 connect_timeout_s: float = 3.0, read_timeout_s: float = 20.0,
                 native_tools: bool = False, tool_choice: str | dict = "auto",
                 **_ignored: object) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.native_tools = native_tools
        self.tool_choice = tool_choice  # "auto", "required", or {"type": "function", ...}
        key = api_key or os.environ.get(api_key_env or "", "")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        # read timeout = longest silence between two streamed lines (first token included)
        self.timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s,
                                     write=connect_timeout_s, pool=connect_timeout_s)
        self.client = httpx.Client(base_url=self.base_url, headers=headers, timeout=self.timeout)

    def load(self) -> None:
        """Nothing to load; an unreachable server is reported per turn (it may come back)."""

    def stream(self, messages: list[Message], *, tools: list[dict] | None, max_tokens: int,
               temperature: float, cancelled: Callable[[], bool],
               text_only: bool = False) -> Iterator[Delta]:
        body: dict = {"messages": messages, "stream": True, "max_tokens": max_tokens,
                      "temperature": temperature}
        if self.model:
            body["model"] = self.model
        if tools and self.native_tools:
            body["tools"] = tools
            body["tool_choice"] = self.tool_choice
        calls: dict[int, dict] = {}
        events = 0
        try:
            with self.client.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code >= 400:
                    resp.read()
                    raise self._http_error(resp.status_code, resp.text)
                for line in resp.iter_lines():
                    if cancelled():
                        return  # leaving the block closes the connection: the server stops
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    events += 1
                    if data == "[DONE]":
                        break
                    delta = self._parse(data, calls)
                    if delta is not None:
                        yield delta
        except httpx.ConnectError as exc:
            raise BackendError("unreachable", f"cannot connect to {self.base_url}: {exc}") from exc
        except httpx.TimeoutException as exc:
            raise BackendError("timeout", f"{self.base_url} timed out "
                                          f"({type(exc).__name__})") from exc
        except (httpx.TransportError, httpx.StreamError) as exc:
            raise BackendError("unreachable", f"connection to {self.base_url} failed: "
                                              f"{type(exc).__name__}: {exc}") from exc
        if events == 0 and not cancelled():
            # llama_cpp.server answers 200 and then closes an empty stream when the prompt
            # exceeds its context (the reason is only in its log)
            raise BackendError("overflow", f"{self.base_url} ended the stream without data "
                                           "(prompt longer than the server's context?)")
        if calls:
            yield Delta(tool_calls=[self._tool_call(c) for _, c in sorted(calls.items())],
                        finish_reason="tool_calls")

    @staticmethod
    def _parse(data: str, calls: dict[int, dict]) -> Delta | None:
        try:
            event = json.loads(data)
        except json.JSONDecodeError:
            return None
        if "error" in event:
            msg = json.dumps(event["error"])[:300]
            kind = "overflow" if any(h in msg.lower() for h in _OVERFLOW_HINTS) else "error"
            raise BackendError(kind, f"server error: {msg}")
        choices = event.get("choices") or []
        if not choices:
            return None
        choice = choices[0]
        d = choice.get("delta") or {}
        for tc in d.get("tool_calls") or []:
            acc = calls.setdefault(int(tc.get("index", 0)), {"id": "", "name": "", "args": ""})
            acc["id"] = tc.get("id") or acc["id"]
            fn = tc.get("function") or {}
            name = fn.get("name") or ""
            # OpenAI sends the name once; llama_cpp.server repeats it in every delta
            if name and name != acc["name"]:
                acc["name"] += name
            acc["args"] += fn.get("arguments") or ""
        text = d.get("content") or ""
        finish = choice.get("finish_reason") or ""
        return Delta(text=text, finish_reason=finish) if (text or finish) else None

    @staticmethod
    def _tool_call(acc: dict) -> ToolCall:
        try:
            args = json.loads(acc["args"] or "{}")
        except json.JSONDecodeError:
            args = {"_unparsed": acc["args"]}  # the validator reports it to the model
        return ToolCall(name=acc["name"], arguments=args if isinstance(args, dict) else {},
                        id=acc["id"])

    @staticmethod
    def _http_error(status: int, text: str) -> BackendError:
        low = text.lower()
        if status in (400, 413) and any(h in low for h in _OVERFLOW_HINTS):
            return BackendError("overflow", f"HTTP {status}: {text[:300]}")
        if status in (401, 403):
            return BackendError("error", f"HTTP {status}: check api_key ({text[:200]})")
        if status in (404,):
            return BackendError("error", f"HTTP 404: check base_url/model ({text[:200]})")
        return BackendError("error", f"HTTP {status}: {text[:300]}")

    def count_tokens(self, text: str) -> int:
        # no tokenizer here: over-estimate (one per ideograph, ~3 chars per Latin token)
        cjk = sum(1 for c in text if ord(c) >= 0x2E80)
        return cjk + (len(text) - cjk) // 3 + 1

    def close(self) -> None:
        self.client.close()
