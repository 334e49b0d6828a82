"""gamgin_llm: the dialogue stage (router, LLM backends, memory, tools)."""
