"""Integration: the openai backend against a real `python -m llama_cpp.server` on loopback
(same packaged model), in the backend alone and in the node; a stopped server is spoken."""

from __future__ import annotations

import time

import pytest

from gamgin_common.testing import NodeProcess
from gamgin_llm.backends import make_backend
from gamgin_llm.chat import BackendError
from gamgin_llm.core import Dialogue, DialogueConfig
from gamgin_llm.language import LINES
from gamgin_llm.memory import ConversationMemory

pytestmark = pytest.mark.integration


def test_openai_backend_streams_from_a_real_server(llama_server):
    b = make_backend("openai", base_url=llama_server.url)
    deltas = list(b.stream([{"role": "user", "content": "Say hello."}], tools=None,
                           max_tokens=24, temperature=0.0, cancelled=lambda: False))
    b.close()
    texts = [d.text for d in deltas if d.text]
    assert len(texts) >= 3 and "".join(texts).strip()
    assert deltas[-1].finish_reason in ("stop", "length")


def test_openai_backend_cancel_stops_the_stream(llama_server):
    b = make_backend("openai", base_url=llama_server.url)
    got: list[str] = []
    for d in b.stream([{"role": "user", "content": "Tell me a long story about a dragon."}],
                      tools=None, max_tokens=200, temperature=0.0,
                      cancelled=lambda: len(got) >= 3):
        if d.text:
            got.append(d.text)
    b.close()
    assert len(got) == 3  # the 4th token is never handed out


def test_unreachable_server_is_a_spoken_apology(llama_server):
    port = llama_server.port + 1 if llama_server.port < 65000 else 1
    b = make_backend("openai", base_url=f"http://127.0.0.1:{port}/v1", connect_timeout_s=1.0)
    with pytest.raises(BackendError) as err:
        list(b.stream([{"role": "user", "content": "hi"}], tools=None, max_tokens=4,
                      temperature=0.0, cancelled=lambda: False))
    assert err.value.kind == "unreachable"
    d = Dialogue(b, DialogueConfig(), ConversationMemory(500, 0, b.count_tokens), log=print)
    spoken: list[str] = []
    r = d.respond("What time is it?", "en", lambda: False, spoken.append)
    assert r.route == "error" and r.finish_reason == "error"
    assert "".join(spoken) == LINES["unreachable"]["en"]
    r = d.respond("现在几点？", "zh", lambda: False, spoken.append)
    assert r.text == LINES["unreachable"]["zh"]


def test_node_with_server_backend_then_server_stopped(env, probe, model_path, new_server):
    srv = new_server()  # its own server: this test stops it
    node = NodeProcess("gamgin_llm", "llm_node", "llm", env,
                       params={"backend": "openai", "base_url": srv.url, "temperature": 0.0,
                               "model_languages": ["en"],
                               "tools": ["music"], "connect_timeout_s": 1.0,
                               "turn_timeout_s": 120.0, "read_timeout_s": 60.0})
    try:
        node.start()
        assert probe.wait_subscribed(30), node.log()
        time.sleep(0.5)
        probe.say(201, "What is your name?")
        final = probe.wait_final(201, 120)
        assert final is not None and final.route == "llm", node.log()
        chunks = probe.chunks(201)
        assert [c.seq for c in chunks] == list(range(len(chunks))) and len(chunks) >= 3
        srv.stop()
        t0 = time.monotonic()
        probe.say(202, "Are you still there?")
        final = probe.wait_final(202, 20)
        assert final is not None and final.route == "error" and final.finish_reason == "error"
        assert time.monotonic() - t0 < 10
        assert probe.replies[202].text == LINES["unreachable"]["en"]
        assert node.alive()
    finally:
        node.stop()
        srv.stop()


def test_stalled_server_times_out_and_speaks():
    """A server that accepts the request and then says nothing (a hung GPU box)."""
    import socket
    import threading

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    conns: list[socket.socket] = []
    threading.Thread(target=lambda: conns.append(srv.accept()[0]), daemon=True).start()
    b = make_backend("openai", base_url=f"http://127.0.0.1:{srv.getsockname()[1]}/v1",
                     read_timeout_s=1.0)
    d = Dialogue(b, DialogueConfig(), ConversationMemory(100, 0, b.count_tokens),
                 log=lambda s: None)
    out: list[str] = []
    t0 = time.monotonic()
    r = d.respond("Hello?", "en", lambda: False, out.append)
    assert 0.9 < time.monotonic() - t0 < 5
    assert r.route == "error" and "timeout" in r.detail and out == [LINES["timeout"]["en"]]
    for c in conns:
        c.close()
    srv.close()


def test_native_tool_calls_stream_from_a_real_server(new_server):
    """Native function calling: llama_cpp.server's chatml-function-calling format streams
    tool_calls deltas; the backend assembles them into one validated-ready ToolCall."""
    srv = new_server("--chat_format", "chatml-function-calling")
    tools = [{"type": "function", "function": {
        "name": "set_power", "description": "switch a device on or off",
        "parameters": {"type": "object", "required": ["device_id", "on"],
                       "properties": {"device_id": {"type": "string",
                                                    "enum": ["kitchen_light", "bedroom_fan"]},
                                      "on": {"type": "boolean"}}}}}]
    # the 135M model never chooses a tool on its own ("auto"); force it to test the wire path
    b = make_backend("openai", base_url=srv.url, native_tools=True,
                     tool_choice={"type": "function", "function": {"name": "set_power"}})
    deltas = list(b.stream([{"role": "user", "content": "Turn off the kitchen light"}],
                           tools=tools, max_tokens=60, temperature=0.0,
                           cancelled=lambda: False))
    b.close()
    calls = [c for d in deltas for c in d.tool_calls]
    assert len(calls) == 1 and calls[0].name == "set_power" and calls[0].id
    assert calls[0].arguments.get("device_id") in ("kitchen_light", "bedroom_fan")
    assert isinstance(calls[0].arguments.get("on"), bool)


def test_node_with_missing_model_still_serves(env, probe, tmp_path):
    node = NodeProcess("gamgin_llm", "llm_node", "llm", env,
                       params={"model_path": str(tmp_path / "missing.gguf"), "tools": ["music"]})
    try:
        node.start()
        assert probe.wait_subscribed(30), node.log()
        time.sleep(0.5)
        probe.say(401, "Hello there")
        final = probe.wait_final(401, 20)
        assert final is not None and final.route == "error", node.log()
        assert probe.replies[401].text == LINES["model"]["en"]
        probe.say(402, "stop")
        final = probe.wait_final(402, 10)
        assert final is not None and final.route == "intent"
        assert "missing.gguf" in node.log() and node.alive()
    finally:
        node.stop()


def test_context_overflow_from_a_real_server_is_named(llama_server):
    b = make_backend("openai", base_url=llama_server.url)
    with pytest.raises(BackendError) as err:
        list(b.stream([{"role": "user", "content": "dogs and cats " * 3000}], tools=None,
                      max_tokens=8, temperature=0.0, cancelled=lambda: False))
    b.close()
    assert err.value.kind == "overflow", err.value
    d = Dialogue(make_backend("openai", base_url=llama_server.url),
                 DialogueConfig(n_ctx=8192, max_input_chars=50000),
                 ConversationMemory(100, 0, len), log=lambda s: None)
    out: list[str] = []
    r = d.respond("dogs and cats " * 3000, "en", lambda: False, out.append)
    assert r.route == "error" and out == [LINES["overflow"]["en"]]
