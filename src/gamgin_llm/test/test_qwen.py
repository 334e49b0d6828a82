"""The default brain, Qwen2.5-Coder-0.5B-Instruct: the installed llm_node in its own process
over real DDS, real inference. What the product must get right, not one wording: the
answer's language, that it is brief, that a Mandarin command moves the named device."""

from __future__ import annotations

import pytest

from gamgin_common.testing import NodeProcess, wait_for
from gamgin_llm.language import cjk_ratio
from gamgin_llm.testing import QWEN

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def qwen(env, probe, devices, tmp_path_factory):
    if not QWEN.exists():
        pytest.skip(f"packaged Qwen model missing: {QWEN} (run scripts/setup)")
    data = tmp_path_factory.mktemp("qwen-data")
    node = NodeProcess("gamgin_llm", "llm_node", "llm", {**env, "GAMGIN_DATA": str(data)},
                       params={"model_path": str(QWEN), "model_languages": ["en", "zh"],
                               "temperature": 0.0, "idle_reset_s": 0.0,
                               "turn_timeout_s": 120.0})
    node.start()
    assert probe.wait_subscribed(60), node.log()
    # the device list (latched) and the warm-up of the head that names the devices
    assert wait_for(lambda: node.log().count("]: warm-up ") >= 2, 120), node.log()
    yield node
    node.stop()
    print(node.log()[-3000:])


def test_mandarin_chat_is_answered_by_the_model_in_brief_mandarin(qwen, probe):
    for turn, text in ((201, "你好，你叫什么名字？"), (202, "今天晚上吃什么好呢？")):
        probe.say(turn, text, "zh")
        final = probe.wait_final(turn, 90)
        assert final is not None, qwen.log()
        reply = probe.replies[turn].text
        assert final.route == "llm", (text, reply, qwen.log()[-1500:])
        assert cjk_ratio(reply) > 0.8, reply  # Mandarin, not the English-only apology
        assert 2 <= len(reply) <= 120, reply  # 少点废话: a sentence or two


def test_english_is_still_answered_in_english(qwen, probe):
    probe.say(203, "What do robot dogs like to play?", "en")
    final = probe.wait_final(203, 90)
    assert final is not None and final.route == "llm", qwen.log()[-1500:]
    reply = probe.replies[203].text
    assert reply.strip() and cjk_ratio(reply) == 0.0, reply


def test_a_mandarin_command_becomes_a_validated_tool_call(qwen, probe):
    """No grammar in this node (only the stop fast path): the model's own tool call, checked
    against the words and the schema, moves the device the user named."""
    assert wait_for(lambda: any(s.device.id == "bedroom_fan" for s in probe.device_states), 10)
    n = len(probe.device_states)
    probe.say(204, "请把卧室风扇打开", "zh")
    final = probe.wait_final(204, 90)
    assert final is not None, qwen.log()
    assert wait_for(lambda: any(s.device.id == "bedroom_fan" and s.device.on
                                for s in probe.device_states[n:]), 5), qwen.log()[-2000:]
    assert not any(s.device.id != "bedroom_fan" for s in probe.device_states[n:])
    assert cjk_ratio(probe.replies[204].text) > 0.5, probe.replies[204].text
