"""The live view as a person sees it: Foxglove Studio 1.48 (its web app from npm, served on
loopback) in Debian's headless Chromium, driven by Playwright, connected to a running graph
(`gamgin up --no-audio`). It imports config/foxglove-layout.json through the app's own
*Import layout* button, the robot answers two typed turns (a device command, a question for
the LLM), and the test reads the panels: transcript and reply text, the turn state by name,
every device, the log at INFO.
Screenshots go to results/viewer/.

Foxglove Studio 1.48 offers only the `foxglove.websocket.v1` subprotocol: this test is also
the bridge's proof that such a viewer connects.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray

from gamgin_common import qos, testing
from gamgin_common.paths import results_path
from gamgin_common.stamps import clock_turn_id
from gamgin_inspect import studio_web
from gamgin_interfaces.msg import Transcript, TurnTrace

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
STATES = ("IDLE", "LISTENING", "THINKING", "SPEAKING", "CANCELLED")

# The app asks the browser for a file (window.showOpenFilePicker), which Playwright cannot
# answer: this stands in for the person choosing config/foxglove-layout.json in that dialog.
PICK_FILE = """([name, text]) => {
  window.showOpenFilePicker = async () => [{
    kind: "file", name, getFile: async () => new File([text], name, {type: "application/json"}),
  }];
}"""


# Every label the turn-state panel shows, as it renders it (a turn of a typed command can
# pass through its states in a few hundred ms: polling from the test would miss some).
WATCH_LABELS = """(root) => {
  window.gamginLabels = [];
  const note = () => {
    const el = [...root.querySelectorAll("*")].find((e) => /^turn: /.test(e.textContent)
                                                   && e.children.length === 0);
    const text = el ? el.textContent.trim() : "";
    const seen = window.gamginLabels;
    if (text && seen[seen.length - 1] !== text) { seen.push(text); }
  };
  note();
  new MutationObserver(note).observe(root, {subtree: true, childList: true,
                                            characterData: true});
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def headless_config(tmp_path: Path) -> Path:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    params = yaml.safe_load((cfg / "devices_params.yaml").read_text())
    for node in params.values():  # the test's switches do not touch the developer's home
        if "state_file" in node.get("ros__parameters", {}):
            node["ros__parameters"]["state_file"] = str(tmp_path / "devices_state.json")
    (cfg / "devices_params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    return cfg


def panel(page, panel_id: str):
    """A panel of the layout by its id in config/foxglove-layout.json (the app names it in
    the test id of the panel's root element)."""
    return page.locator(f'[data-testid~="{panel_id}"]')


def test_foxglove_studio_shows_a_typed_turn_with_the_shipped_layout(probe, node_env, tmp_path):
    from playwright.sync_api import sync_playwright

    missing = studio_web.missing_files()
    assert not missing, f"Foxglove Studio web bundle missing {missing}: run scripts/setup"
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed: run scripts/setup"
    shots = results_path("viewer/connected.png").parent
    diags = probe.collect(DiagnosticArray, "/diagnostics", qos.DIAGNOSTICS)
    traces = probe.collect(TurnTrace, "/gamgin/turn/trace", qos.EVENTS)
    cfg = headless_config(tmp_path)
    port = free_port()
    up = subprocess.Popen(
        ["gamgin", "up", "--no-audio", "--no-standby", "--exclude", "wake,stt,knowledge",
         "--bridge-port", str(port), "--config", str(cfg), "--log-dir", str(tmp_path / "logs")],
        env=dict(node_env, GAMGIN_CONFIG=str(cfg)), stdout=open(tmp_path / "up.log", "wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731

    def active(name: str) -> bool:
        st = probe.diagnostics_of(diags, f"/gamgin/{name}")
        return bool(st) and any(kv.key == "lifecycle" and kv.value == "active"
                                for kv in st[-1].values)

    seen_states: list[str] = []
    page_errors: list[str] = []
    try:
        assert testing.wait_for(lambda: all(active(n) for n in (
            "turn", "llm", "tts", "devices", "foxglove_bridge")), 120), log()
        with studio_web.StudioServer() as web, sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=chromium,
                args=["--no-sandbox"] if os.geteuid() == 0 else [])  # root: CI
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.on("pageerror", lambda e: page_errors.append(str(e)))
                t0 = time.monotonic()
                page.goto(web.url(f"ws://127.0.0.1:{port}"))
                # connected: the data source lists the bridge's topics
                page.get_by_text("/gamgin/inspect/turn_state", exact=True).wait_for(
                    timeout=60_000)
                connected_s = time.monotonic() - t0
                page.screenshot(path=shots / "connected.png")
                layout = (ROOT / "config" / "foxglove-layout.json").read_text()
                page.evaluate(PICK_FILE, ["foxglove-layout.json", layout])
                page.get_by_title("Layouts").click()
                page.get_by_title("Import layout").click()
                indicator = panel(page, "Indicator!turn")
                indicator.get_by_text("turn: IDLE").wait_for(timeout=30_000)
                page.get_by_title("Layouts").click()  # the sidebar closed: room for panels

                pub = probe.publisher(Transcript, "/gamgin/transcript", qos.EVENTS)
                assert probe.wait_for_reader(pub, "turn", "llm")

                def say(text: str) -> int:
                    typed = Transcript(turn_id=clock_turn_id(), text=text, language="zh",
                                       confidence=1.0, is_final=True, source="typed")
                    typed.header.stamp = probe.node.get_clock().now().to_msg()  # typed now
                    pub.publish(typed)
                    return typed.turn_id

                # 1. a device command: what was heard and said, every device, the log
                turn = say("把客厅的灯打开")
                assert testing.wait_for(lambda: any(t.turn_id == turn for t in traces), 30), log()
                trace = next(t for t in traces if t.turn_id == turn)
                panel(page, "RawMessages!transcript").get_by_text("把客厅的灯打开").wait_for(
                    timeout=10_000)
                panel(page, "RawMessages!reply").get_by_text(trace.reply_text.strip()).wait_for(
                    timeout=10_000)
                devices = panel(page, "Table!devices")
                names = yaml.safe_load((cfg / "devices.yaml").read_text())["devices"]
                for dev in names.values():
                    devices.get_by_text(f"{dev['name_zh']} {dev['name_en']}").wait_for(
                        timeout=10_000)
                light_text = devices.locator("tr", has_text="客厅灯 living room light").inner_text()
                logs = panel(page, "RosOut!log")
                logs.get_by_text(f"turn {turn}: idle (reply complete (no speaker))").wait_for(
                    timeout=10_000)
                log_text = logs.inner_text()
                page.screenshot(path=shots / "after-turn.png")

                # 2. a question for the LLM: a turn long enough to be watched, by name, as it
                # goes (a device command can pass its states within one frame of the viewer)
                indicator.element_handle().evaluate(WATCH_LABELS)
                story = say("给我讲一个关于小狗的故事")
                deadline, during = time.monotonic() + 60, False
                while time.monotonic() < deadline:
                    seen_states = page.evaluate("() => window.gamginLabels")
                    if not during and seen_states[-1] in ("turn: THINKING", "turn: SPEAKING"):
                        page.screenshot(path=shots / "during-turn.png")
                        during = True
                    if any(t.turn_id == story for t in traces) and seen_states[-1] == "turn: IDLE":
                        break
                    time.sleep(0.02)
                story_trace = next((t for t in traces if t.turn_id == story), None)
                assert story_trace is not None, log()
                first_words = story_trace.reply_text.strip().splitlines()[0][:8]
                panel(page, "RawMessages!reply").get_by_text(first_words).wait_for(
                    timeout=10_000)
            except Exception:
                page.screenshot(path=shots / "failed.png")  # what the person saw instead
                raise
            finally:
                browser.close()
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(30)
    print(f"viewer connected {connected_s:.1f} s after page load; turn states shown: "
          f"{seen_states}; screenshots in {shots}")
    assert code == 0, log()
    assert not page_errors, page_errors
    assert trace.outcome == "answered" and "客厅灯" in trace.reply_text, trace
    assert story_trace.outcome == "answered", story_trace
    # a typed turn is timed from its text: the latency plot gets a point for it
    assert 0 <= trace.first_token_ms <= trace.first_audio_ms < 10_000, trace
    # the turn state by name, never as a number, through the turn to IDLE
    assert seen_states[-1] == "turn: IDLE", seen_states
    assert {"turn: THINKING", "turn: SPEAKING"} & set(seen_states), seen_states
    assert all(s.removeprefix("turn: ") in STATES for s in seen_states), seen_states
    assert light_text.split("\t")[-1].startswith("on"), light_text  # switched by the command
    assert "INFO" in log_text and "?????" not in log_text, log_text[-2000:]
    assert json.loads(layout)["configById"]["RosOut!log"]["minLogLevel"] == 2  # >= INFO
