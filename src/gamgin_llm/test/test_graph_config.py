"""Integration: the node with config/llm.yaml as the graph runs it, i.e. with the devices
fast path and the knowledge plug-ins of the sibling packages loaded by dotted name."""

from __future__ import annotations

import importlib.util

import pytest

from gamgin_common.paths import workspace_root
from gamgin_common.testing import NodeProcess, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("gamgin_devices", "gamgin_knowledge")),
    reason="gamgin_devices / gamgin_knowledge not built")]


def test_config_plugins_route_a_chinese_command_to_a_real_service(env, probe, devices,
                                                                  model_path):
    cfg = workspace_root() / "config" / "llm.yaml"
    node = NodeProcess("gamgin_llm", "llm_node", "llm", env, params_files=[str(cfg)])
    try:
        node.start()
        assert probe.wait_subscribed(60), node.log()
        assert wait_for(lambda: "ready" in node.log(), 60), node.log()
        probe.say(301, "把客厅的灯打开", "zh")
        final = probe.wait_final(301, 90)
        assert final is not None and final.route == "intent", node.log()
        assert "客厅灯" in probe.replies[301].text
        assert wait_for(lambda: any(s.device.id == "living_room_light" and s.device.on
                                    for s in probe.device_states), 5), node.log()
        probe.say(302, "安静")
        final = probe.wait_final(302, 10)
        assert final is not None and final.route == "intent"
        assert probe.replies[302].text == "好的。"
    finally:
        node.stop()
