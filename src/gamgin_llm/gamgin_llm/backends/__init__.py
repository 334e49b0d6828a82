"""LLM backends behind ``gamgin_llm.chat.ChatBackend``, chosen by the ``backend`` parameter."""

from __future__ import annotations

from typing import Any

from gamgin_llm.chat import ChatBackend

BACKENDS = ("llama_cpp", "openai")


def make_backend(name: str, **options: Any) -> ChatBackend:
    """Build (not load) a backend. Imports lazily: the openai backend needs no llama.cpp."""
    if name == "llama_cpp":
        from gamgin_llm.backends.llama_cpp import LlamaCppBackend

        return LlamaCppBackend(**options)
    if name == "openai":
        from gamgin_llm.backends.openai import OpenAIBackend

        return OpenAIBackend(**options)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
