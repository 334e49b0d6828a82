from gamgin.trace import render
from gamgin_interfaces.msg import TurnTrace


def t(ms: int):
    from builtin_interfaces.msg import Time

    ns = 1_000_000_000_000 + ms * 1_000_000
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def test_render_places_each_stage_relative_to_the_end_of_speech():
    msg = TurnTrace(turn_id=3, outcome="answered", route="intent", user_text="turn on the light",
                    reply_text="OK.", wake=t(-2000), speech_end=t(0), final_transcript=t(60),
                    first_token=t(70), first_audio=t(250), end=t(1500), first_audio_ms=250.0)
    text = render(msg)
    assert "turn 3: answered  route=intent" in text
    lines = {ln[:19].strip(): ln for ln in text.splitlines() if "ms |" in ln}
    assert "-2000 ms" in lines["wake"] and "+250 ms" in lines["first audio"]
    assert lines["wake"].endswith("|*") and lines["end"].endswith(" " * 39 + "*")
    assert text.rstrip().endswith("end of speech -> first audio: 250 ms")
    assert "speech start" not in text  # stages that did not happen are not drawn
