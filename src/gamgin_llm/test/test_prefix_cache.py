"""The prompt head kept on disk between processes: restored, reused, and never wrong."""

import os
import subprocess
import sys
import textwrap

from gamgin_llm.backends.llama_cpp import LlamaCppBackend

HEAD = [{"role": "system", "content": "You are 金坚, a friendly robot dog. Answer briefly. " * 20}]
ASK = [*HEAD, {"role": "user", "content": "What is your name?"}]


def answer(b: LlamaCppBackend, messages: list) -> str:
    return "".join(d.text for d in b.stream(messages, tools=None, max_tokens=16,
                                              temperature=0.0, cancelled=lambda: False))


def test_a_new_backend_restores_the_head_and_answers_exactly_as_without_it(model_path, tmp_path):
    cache = tmp_path / "cache"
    plain = LlamaCppBackend(model_path, n_ctx=1024)
    plain.load()
    expected = answer(plain, ASK)
    plain.close()

    first = LlamaCppBackend(model_path, n_ctx=1024, prefix_cache_dir=cache)
    first.load()
    assert first.restore_prefix() == 0  # nothing saved yet
    answer(first, [*HEAD, {"role": "user", "content": "hello"}])  # the warm-up
    saved = first.save_prefix()
    first.close()
    assert saved > 100 and len(list(cache.glob("*.kv"))) == 1

    second = LlamaCppBackend(model_path, n_ctx=1024, prefix_cache_dir=cache)
    second.load()
    assert second.restore_prefix() == saved
    assert answer(second, ASK) == expected  # greedy: the cache must not change a word
    # a different system prompt reuses only the common start and is still answered right
    other = [{"role": "system", "content": "You are a cat."}, ASK[-1]]
    assert answer(second, other) == answer(plain_loaded(model_path), other)
    second.close()


def plain_loaded(model_path) -> LlamaCppBackend:
    b = LlamaCppBackend(model_path, n_ctx=1024)
    b.load()
    return b


def test_a_corrupt_or_foreign_cache_file_is_dropped_not_trusted(model_path, tmp_path):
    b = LlamaCppBackend(model_path, n_ctx=1024, prefix_cache_dir=tmp_path)
    b.load()
    answer(b, ASK)
    assert b.save_prefix() > 0
    path, = tmp_path.glob("*.kv")
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as after a full disk
    b.close()
    c = LlamaCppBackend(model_path, n_ctx=1024, prefix_cache_dir=tmp_path)
    c.load()
    assert c.restore_prefix() == 0 and not path.exists()
    assert answer(c, ASK)  # still answers, from a fresh prefill
    c.close()


def test_another_context_size_does_not_take_the_file(model_path, tmp_path):
    b = LlamaCppBackend(model_path, n_ctx=1024, prefix_cache_dir=tmp_path)
    b.load()
    answer(b, ASK)
    b.save_prefix()
    b.close()
    c = LlamaCppBackend(model_path, n_ctx=2048, prefix_cache_dir=tmp_path)
    c.load()
    assert c.restore_prefix() == 0
    c.close()


def test_restore_happens_in_a_new_process(model_path, tmp_path):
    """What a restarted node does: another process saved it, this one restores it."""
    code = textwrap.dedent(f"""
        from gamgin_llm.backends.llama_cpp import LlamaCppBackend
        b = LlamaCppBackend({str(model_path)!r}, n_ctx=1024, prefix_cache_dir={str(tmp_path)!r})
        b.load()
        n = b.restore_prefix()
        if n == 0:
            list(b.stream({ASK!r}, tools=None, max_tokens=1, temperature=0.0,
                          cancelled=lambda: False))
            n = -b.save_prefix()
        print(n)
    """)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           env=dict(os.environ), timeout=120) for _ in range(2)]
    saved, restored = (int(r.stdout.strip().splitlines()[-1]) for r in runs)
    assert saved < 0 and restored == -saved, [r.stderr[-500:] for r in runs]
