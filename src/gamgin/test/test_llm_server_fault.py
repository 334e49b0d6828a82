"""The LLM server goes away mid-conversation and comes back (`gamgin up`, real processes).

The llm node talks to a real `python -m llama_cpp.server` on loopback; the robot's voice
is recorded from the speaker's null sink. While the server is down a question gets a
spoken apology (not silence, not a crash); once the same server is back, the next
question is answered by the model again, with no restart of any node.
"""

import time

import pytest
from diagnostic_msgs.msg import DiagnosticArray

from gamgin.bench_e2e import GraphRun, edit_params, make_config
from gamgin.graph import default_config_dir
from gamgin_common import qos, testing
from gamgin_interfaces.msg import Transcript, TurnTrace
from gamgin_llm.language import LINES
from gamgin_llm.testing import MODEL, LlamaServer

pytestmark = pytest.mark.integration

EXCLUDE = ["mic", "wake", "stt", "devices", "music", "knowledge", "foxglove_bridge",
           "speech_bubble"]


def node_pids(diags, names: list[str]) -> dict[str, str]:
    pids: dict[str, str] = {}
    for arr in list(diags):
        for s in arr.status:
            vals = {kv.key: kv.value for kv in s.values}
            name = s.name.rsplit("/", 1)[-1]
            if name in names and vals.get("lifecycle") == "active":
                pids[name] = vals.get("pid", "")
    return pids


def test_llm_server_down_is_an_apology_aloud_and_the_next_turn_works_when_it_returns(
        pulse, probe, node_env, tmp_path):
    if not MODEL.exists():
        pytest.skip(f"packaged model missing: {MODEL} (run scripts/setup)")
    server = LlamaServer().start()
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    typed = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)

    def ask(turn_id: int, text: str) -> TurnTrace:
        msg = Transcript(turn_id=turn_id, text=text, language="en", is_final=True,
                         confidence=1.0, source="typed")
        msg.header.stamp = probe.node.get_clock().now().to_msg()
        typed.publish(msg)
        assert testing.wait_for(lambda: any(t.turn_id == turn_id for t in traces), 60), log()
        return next(t for t in traces if t.turn_id == turn_id)

    with testing.null_sink("gamgin_llmfault") as sink:
        cfg = make_config(default_config_dir(), tmp_path / "config", sink, sink, "wake")
        edit_params(cfg, "llm.yaml", "/gamgin/llm", backend="openai", base_url=server.url,
                    connect_timeout_s=1.0, read_timeout_s=30.0, temperature=0.0, tools=["music"])
        run = GraphRun(cfg, dict(node_env, GAMGIN_DATA=str(tmp_path / "data")),
                       tmp_path / "graph.log", exclude=EXCLUDE)

        def log() -> str:
            return (tmp_path / "graph.log").read_text(errors="replace")[-5000:]

        try:
            names = ["turn", "speaker", "tts", "llm"]
            assert testing.wait_for(lambda: len(node_pids(diags, names)) == 4, 120), log()
            pids = node_pids(diags, names)
            time.sleep(1.0)

            ok = ask(101, "What is your name?")
            assert ok.outcome == "answered" and ok.route == "llm" and ok.reply_text, log()

            server.stop()
            with testing.Recorder(f"{sink}.monitor") as rec:
                sorry = ask(102, "Are you still there?")
                time.sleep(0.5)  # the last block leaves the sink's buffer
                heard = rec.stop()
            assert sorry.outcome == "error" and sorry.route == "error", log()
            assert sorry.reply_text == LINES["unreachable"]["en"]
            spoken_s = testing.loud_seconds(heard)
            assert sorry.first_audio.sec > 0 and spoken_s > 0.5, spoken_s

            server.start()  # the same address: the node was never told anything
            back = ask(103, "Tell me about dogs.")
            assert back.outcome == "answered" and back.route == "llm", log()
            assert back.reply_text and back.reply_text != sorry.reply_text
            assert node_pids(diags, names) == pids  # nothing crashed or restarted
        finally:
            run.stop()
            server.stop()
