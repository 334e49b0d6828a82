"""In-process llama.cpp (llama-cpp-python): a GGUF by path, chat template from the model."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

from gamgin_llm.chat import BackendError, Delta, Message


class LlamaCppBackend:
    name = "llama_cpp"
    native_tools = False  # the GGUF's own template decides; small models use the prompt path

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, n_threads: int = 2,
                 n_gpu_layers: int = 0, chat_format: str = "", seed: int = 0,
                 constrain_tools: bool = True, **_ignored: object) -> None:
        self.model_path = Path(model_path)
        self.n_ctx, self.n_threads, self.n_gpu_layers = n_ctx, n_threads, n_gpu_layers
        self.chat_format = chat_format or None  # None: use tokenizer.chat_template from the GGUF
        self.seed = seed
        # small models write broken JSON; a grammar makes every reply either plain text or a
        # call that matches a tool's schema (the parse-and-validate path still checks it)
        self.constrain_tools = constrain_tools
        self._grammars: dict[str, object] = {}
        self.llm = None

    def load(self) -> None:
        p = self.model_path
        if not p.is_file():
            raise BackendError("model", f"GGUF model not found: {p} (set model_path to a .gguf "
                                        "file; the packaged one is smollm2-135m-instruct.gguf)")
        with open(p, "rb") as f:
            if f.read(4) != b"GGUF":
                raise BackendError("model", f"{p} is not a GGUF file (corrupt or wrong format); "
                                            "re-run scripts/setup or point model_path elsewhere")
        from llama_cpp import Llama

        try:
            self.llm = Llama(model_path=str(p), n_ctx=self.n_ctx, n_threads=self.n_threads,
                             n_threads_batch=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                             chat_format=self.chat_format, seed=self.seed, verbose=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError("model", f"llama.cpp could not load {p}: {exc} "
                                        "(file truncated or corrupt?)") from exc

    def stream(self, messages: list[Message], *, tools: list[dict] | None, max_tokens: int,
               temperature: float, cancelled: Callable[[], bool]) -> Iterator[Delta]:
        if self.llm is None:
            raise BackendError("model", "llama.cpp model is not loaded")
        grammar = self._grammar(tools) if tools and self.constrain_tools else None
        try:
            gen = self.llm.create_chat_completion(
                messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature,
                repeat_penalty=1.15, grammar=grammar)
        except ValueError as exc:  # prompt longer than the context window
            raise BackendError("overflow", f"llama.cpp: {exc}") from exc
        try:
            for chunk in gen:
                if cancelled():
                    return
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") or ""
                finish = choice.get("finish_reason") or ""
                if text or finish:
                    yield Delta(text=text, finish_reason=finish)
        except ValueError as exc:
            raise BackendError("overflow", f"llama.cpp: {exc}") from exc
        finally:
            gen.close()  # stops decoding at once when the caller stops early

    def _grammar(self, tools: list[dict]) -> object:
        """GBNF: a JSON {"tool", "arguments"} call matching one tool schema, or text that does
        not start with "{"."""
        key = json.dumps(tools, sort_keys=True)
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar
            from llama_cpp.llama_grammar import json_schema_to_gbnf

            alts = [{"type": "object", "additionalProperties": False,
                     "required": ["tool", "arguments"],
                     "properties": {"tool": {"const": t["function"]["name"]},
                                    "arguments": t["function"]["parameters"]}} for t in tools]
            gbnf = json_schema_to_gbnf(json.dumps({"oneOf": alts}))
            gbnf = gbnf.replace("root ::=", "call ::=", 1)
            gbnf += '\nroot ::= call | text\ntext ::= [^{\\x00] [^\\x00]*\n'
            self._grammars[key] = LlamaGrammar.from_string(gbnf, verbose=False)
        return self._grammars[key]

    def count_tokens(self, text: str) -> int:
        if self.llm is None:
            return len(text) // 3 + 1
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
