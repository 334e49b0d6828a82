"""Integration: the installed llm_node in its own process, real DDS, the packaged model,
and a real devices service server process."""

from __future__ import annotations

import json
import re
import time

import pytest
from std_srvs.srv import Trigger

from gamgin_common.testing import NodeProcess, wait_for
from gamgin_llm.language import cjk_ratio

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def llm(env, probe, devices, model_path):
    node = NodeProcess("gamgin_llm", "llm_node", "llm", env,
                       params={"temperature": 0.0, "max_tokens": 160, "idle_reset_s": 0.0,
                               "turn_timeout_s": 120.0, "model_path": str(model_path),
                               "model_languages": ["en"], "constrain_tools": True,
                               "max_sentences": 0})
    node.start()
    assert probe.wait_subscribed(30), node.log()
    # the device list arrives on devices/state (latched); give discovery a moment
    time.sleep(1.0)
    yield node
    node.stop()
    print(node.log()[-3000:])


def test_transcript_yields_ordered_streamed_reply(llm, probe):
    probe.say(101, "What is your name?")
    final = probe.wait_final(101, 90)
    assert final is not None, llm.log()
    chunks = probe.chunks(101)
    assert [c.seq for c in chunks] == list(range(len(chunks)))
    assert chunks[-1].is_final and sum(c.is_final for c in chunks) == 1
    assert final.finish_reason in ("stop", "length") and final.route == "llm"
    text = "".join(c.text for c in chunks)
    assert len(chunks) >= 3, "a reply is streamed in pieces, not sent whole"
    assert text.strip() and cjk_ratio(text) == 0.0
    assert probe.replies[101].text == text and probe.replies[101].is_final


def test_stop_is_answered_by_the_fast_path(llm, probe):
    probe.say(102, "安静")
    final = probe.wait_final(102, 10)
    assert final is not None and final.route == "intent"
    assert probe.replies[102].text == "好的。"


def test_chinese_question_gets_an_honest_chinese_line(llm, probe):
    probe.say(103, "你好，你叫什么名字？", "zh")
    final = probe.wait_final(103, 90)
    assert final is not None and final.route == "fallback", llm.log()
    assert cjk_ratio(probe.replies[103].text) > 0.9


def test_cancelled_turn_stops_streaming(llm, probe):
    probe.say(104, "Tell me a long story about a brave dragon, a princess and a wizard.")
    assert wait_for(lambda: len(probe.chunks(104)) >= 2, 90), llm.log()
    probe.cancel(104)
    t_cancel = time.monotonic()
    final = probe.wait_final(104, 10)
    assert final is not None and final.finish_reason == "cancelled"
    assert time.monotonic() - t_cancel < 5.0  # generous: the 2 cores are shared
    n_at_final = len(probe.chunks(104))
    time.sleep(0.5)
    assert len(probe.chunks(104)) == n_at_final, "nothing may follow the final chunk"
    assert n_at_final < 160


def test_newer_turn_supersedes_running_turn(llm, probe):
    probe.say(105, "Tell me a long story about a brave dragon, a princess and a wizard.")
    assert wait_for(lambda: len(probe.chunks(105)) >= 1, 90)
    probe.say(106, "stop")
    f105, f106 = probe.wait_final(105, 10), probe.wait_final(106, 10)
    assert f105 is not None and f105.finish_reason == "cancelled"
    assert f106 is not None and f106.route == "intent" and probe.replies[106].text == "Okay."


def test_empty_and_huge_transcripts_are_answered(llm, probe):
    probe.say(107, "   ")
    f107 = probe.wait_final(107, 20)
    assert f107 is not None and f107.route == "fallback" and probe.replies[107].text
    probe.say(108, "Why is the sky blue? " * 500)  # 10,500 characters
    f108 = probe.wait_final(108, 120)
    assert f108 is not None and f108.finish_reason != "error" and probe.replies[108].text
    assert llm.alive()


def reset(probe) -> Trigger.Response:
    assert probe.reset_client.wait_for_service(timeout_sec=10)
    fut = probe.reset_client.call_async(Trigger.Request())
    assert wait_for(fut.done, 10)
    return fut.result()


def test_reset_service_forgets_the_conversation(llm, probe):
    probe.say(110, "quiet")  # fast path: remembered like any exchange
    assert probe.wait_final(110, 10) is not None
    res = reset(probe)
    assert res.success and res.message.startswith("forgot ")
    assert int(res.message.split()[1]) >= 1


def test_tool_call_reaches_a_real_ros_service(llm, probe, devices):
    assert wait_for(lambda: any(s.device.id == "kitchen_light" for s in probe.device_states), 10)
    reset(probe)  # a 135M model copies its recent replies; start the command afresh
    probe.say(111, "Turn off the kitchen light")
    final = probe.wait_final(111, 90)
    assert final is not None, llm.log()
    changed = wait_for(lambda: any(s.device.id == "kitchen_light" and s.change == "power"
                                   and not s.device.on for s in probe.device_states), 5)
    assert changed, llm.log()[-2000:]
    assert "tool set_power" in llm.log()


def test_a_restarted_node_restores_the_whole_head_with_its_devices(llm, env, devices, tmp_path,
                                                                 model_path):
    """The head names the devices. A restart knows them from the last run, so it restores
    the head as the last run warmed it (with devices) and needs no second prefill when the
    live device list arrives: the first turn after a crash only evaluates its question."""
    env = {**env, "GAMGIN_DATA": str(tmp_path)}
    heads: list[tuple[int, int, int]] = []
    for run in range(2):
        (tmp_path / str(run)).mkdir()
        node = NodeProcess("gamgin_llm", "llm_node", "llm", env, log_dir=str(tmp_path / str(run)),
                           params={"temperature": 0.0, "idle_reset_s": 0.0,
                                   "model_path": str(model_path), "model_languages": ["en"]})
        node.start()
        try:
            assert wait_for(lambda n=node: "prompt head:" in n.log(), 90), node.log()
            # the devices' latched states, then the 3 s in which unconfirmed ones are dropped
            time.sleep(6.0)
            log = node.log()
        finally:
            assert node.stop() == 0
        line = next(x for x in log.splitlines() if "prompt head:" in x)
        restored, reused, saved = (int(w) for w in re.findall(r"(\d+) (?:tokens restored|"
                                                            r"reused|saved)", line))
        heads.append((restored, reused, saved))
        warmups = log.count("]: warm-up ")
        if run == 0:  # nothing cached: the devices arrive after the first warm-up
            assert restored == 0 and warmups == 2, log
        else:  # the devices were known: one warm-up, from the restored head
            assert warmups == 1, log
    (_, _, first_saved), (restored, reused, saved) = heads
    assert restored > first_saved, "the cache holds the head with the devices' names"
    assert reused == restored == saved
    assert json.loads((tmp_path / "cache" / "llm" / "devices.json").read_text()).keys() == {
        "kitchen_light", "living_room_light", "bedroom_fan"}
