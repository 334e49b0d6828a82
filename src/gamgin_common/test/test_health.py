from gamgin_common.health import ERROR, OK, WARN, Health


def test_changes_are_flagged_once_and_counters_reported():
    h = Health()
    assert h.changed
    level, msg, _ = h.snapshot()
    assert (level, msg) == (WARN, "starting") and not h.changed
    h.ok()
    assert h.changed
    h.snapshot()
    h.ok()  # same state: no change
    assert not h.changed
    h.count("malformed_chunks", 3)
    h.value("backend", "fewshot")
    h.error("model file missing: /x; run scripts/setup")
    level, msg, values = h.snapshot()
    assert level == ERROR and "missing" in msg
    assert values == {"backend": "fewshot", "malformed_chunks": "3"}
    assert OK == 0


def test_a_milestone_value_is_published_once_and_plain_values_wait_for_the_tick():
    h = Health()
    h.snapshot()
    h.value("queue", 3)
    assert not h.changed  # values that change all the time ride on the 1 Hz tick
    h.value("mic", "receiving", notify=True)
    assert h.changed
    h.snapshot()
    h.value("mic", "receiving", notify=True)
    assert not h.changed
