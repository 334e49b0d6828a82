from gamgin_inspect.view import DeviceBoard, DeviceView, playback_state_name, turn_state_name


def test_states_read_as_the_constants_name_them():
    assert [turn_state_name(s) for s in range(5)] == [
        "IDLE", "LISTENING", "THINKING", "SPEAKING", "CANCELLED"]
    assert (playback_state_name(3), playback_state_name(0), playback_state_name(4)) == (
        "PLAYING", "FINISHED", "FLUSHED")
    assert turn_state_name(9) == "UNKNOWN (9)"


def test_the_board_keeps_every_device_in_first_seen_order_and_says_when_it_changed():
    board = DeviceBoard()
    assert board.update(DeviceView("tv", "电视 TV", "living_room", False))
    assert board.update(DeviceView("ac", "空调 AC", "bedroom", True,
                                   [("temperature", 26.0, "°C"), ("mode", 1.0, "")]))
    assert not board.update(DeviceView("tv", "电视 TV", "living_room", False))  # a repeat
    assert board.update(DeviceView("tv", "电视 TV", "living_room", True))
    assert board.rows() == [("电视 TV", "on"), ("空调 AC", "on · temperature 26 °C · mode 1")]
    assert board.headline() == "2 of 2 devices on"
