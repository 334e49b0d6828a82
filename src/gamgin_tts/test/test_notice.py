"""The robot's notices, rendered ahead of time (gamgin_tts.notice)."""

import soundfile

from gamgin_tts.notice import main, render


def test_a_notice_is_rendered_in_each_household_language(tmp_path):
    for lang, text in (("en", "My brain is away."), ("zh", "我的大脑暂时不在。")):
        samples, rate = render(text, lang)
        assert rate >= 16000 and len(samples) / rate > 0.8, (lang, len(samples) / rate)
        assert float(abs(samples).max()) > 0.1
    out = tmp_path / "n.wav"
    assert main([str(out), "--lang", "en", "My", "brain", "is", "away."]) == 0
    assert soundfile.info(str(out)).duration > 0.8
    assert not list(tmp_path.glob("*.tmp*"))  # written whole, then renamed
