"""The dialogue: route a transcript to a fast path or the LLM, stream a speakable reply,
run tools, remember the conversation. Pure Python (no rclpy): the node only wires it.

One turn = ``Dialogue.respond(text, ...)``. Reply text goes out through ``emit`` piece by
piece as the model produces it; ``cancelled()`` is polled between tokens, so a newer turn
or an interrupt stops the stream within one token.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gamgin_llm import language as lang_mod
from gamgin_llm.chat import BackendError, ChatBackend, Message, ToolCall
from gamgin_llm.grounding import (
    Verdict,
    asks_about_owner,
    check_call,
    device_name,
    mentions_device,
    param_name,
    topic_words,
)
from gamgin_llm.language import SpeakableFilter, in_language, line, sentences
from gamgin_llm.memory import ConversationMemory
from gamgin_llm.router import CheckingRetriever, FastAnswer, FastPath, Passage, Retriever
from gamgin_llm.tools import (
    ToolRegistry,
    looks_like_tool_call,
    parse_tool_call,
    result_message,
    speech_of,
)

LANG_NAMES = {"zh": "Chinese (Mandarin, simplified characters)", "en": "English"}


_SENTENCE_END = re.compile(r"[。！？!?]+|[.…]+(?=\s)")


_TEMPLATED = ("device", "device_read", "music")  # tools whose outcome a template can say


def count_sentences(text: str) -> int:
    """Finished sentences in a streamed reply ("3.5" and a trailing "." not yet followed by
    anything are not ends: the next piece decides)."""
    return len(_SENTENCE_END.findall(text))


@dataclass
class DialogueConfig:
    system_prompt: str = "You are Jinjian, a playful robot dog. Answer in one short sentence."
    # the persona in Mandarin, added to the head when the model speaks Mandarin: a small
    # model keeps to Mandarin better with Mandarin instructions ("" = none)
    system_prompt_zh: str = ""
    max_tokens: int = 96  # per completion; a spoken answer is short
    # 少点废话: a spoken reply ends after this many sentences (0 = only max_tokens)
    max_sentences: int = 2
    # after a device or music action (or a device read), say the outcome from a template
    # instead of asking the model for a sentence about it
    confirm_from_template: bool = True
    temperature: float = 0.3
    n_ctx: int = 2048  # the backend's context window, for the prompt budget
    max_input_chars: int = 1000  # longer transcripts are cut (and the cut is logged)
    max_tool_steps: int = 3  # tool calls per turn before the model must answer
    tool_mode: str = "prompt"  # "prompt" (JSON fallback), "native" (backend tools), "off"
    language_check: bool = True  # replace replies not in the user's language
    judge_chars: int = 12  # letters seen before judging the reply's language
    turn_timeout_s: float = 30.0  # a turn never takes longer than this
    few_shot: int = 2  # example tool-call exchanges shown to prompt-mode models
    log_timings: bool = True  # count the prompt's tokens for TurnResult.timings
    # languages the model really speaks; others get the honest line without trying (the
    # packaged 135M model writes Chinese-looking gibberish that no text check can catch)
    model_languages: tuple[str, ...] = ("en", "zh")


@dataclass
class TurnResult:
    text: str  # everything spoken for this turn
    route: str  # "llm", "intent", "knowledge", "fallback", "error"
    finish_reason: str  # "stop", "cancelled", "error", "length"
    lang: str
    detail: str = ""  # why a fallback/error line was spoken (for logs and /diagnostics)
    tool_calls: list[dict] = field(default_factory=list)  # {"name", "arguments", "result"}
    # the model's calls the user's words did not ask for: never run ({"name", "arguments",
    # "verdict" ask|drop, "reason"})
    refused_calls: list[dict] = field(default_factory=list)
    ttft_s: float | None = None  # first model token after the turn started
    tokens: int = 0  # model deltas received
    elapsed_s: float = 0.0
    # where the time went, ms from the turn's start unless named otherwise: "fast_paths",
    # "retrieve", "prompt_tokens", "first_token", "first_emit" (the gate let text out)
    timings: dict[str, float] = field(default_factory=dict)


CJK_LETTERS = 3  # what a Chinese character weighs in the gate's judge_chars


class ReplyGate:
    """Decides, as tokens stream in, what may be spoken.

    - The first ``judge_chars`` letters are held back to judge the language; a reply in
      the wrong language is rejected before anything reaches the speaker. A Chinese
      character counts as ``CJK_LETTERS`` letters: four of them tell the script as surely
      as twelve Latin letters, and holding twelve held a Mandarin reply's first clause
      (~8 more tokens, ~200 ms at 38 tokens/s) before the voice could start.
    - A reply that starts like a JSON tool call is held whole (it is not speech).
    - A sentence that repeats an earlier one ends the reply (small models loop); while a
      sentence could still be a repeat it is held, otherwise tokens pass at once.
    - Everything spoken goes through the speakable filter (no markdown, lists, emoji).
    """

    def __init__(self, lang: str, check_language: bool, judge_chars: int,
                 allow_tools: bool, said_before: list[str] | None = None) -> None:
        self.lang, self.check_language = lang, check_language
        self.judge_chars, self.allow_tools = judge_chars, allow_tools
        self.state = "judging"  # -> speaking | tool | rejected | looped
        self.raw = ""
        self.reject_reason = ""
        self._emitted = 0  # raw[:_emitted] has been passed on
        self._sent_start = 0  # where the current sentence starts in raw
        # normalized earlier sentences; long ones from recent replies count too: a small
        # model parrots its last answer ("I'm glad you're happy...") turn after turn
        self._seen: list[str] = [s for r in said_before or [] for s in map(_norm, sentences(r))
                                 if len(s.split()) >= 4 or len(s) >= 12]
        self._filter = SpeakableFilter()
        self.spoken = ""

    @property
    def done(self) -> bool:
        """Stop generating: the rest would not be spoken anyway."""
        return self.state in ("rejected", "looped")

    def push(self, piece: str) -> str:
        if self.done or not piece:
            return ""
        self.raw += piece
        if self.state == "judging":
            stripped = self.raw.lstrip()
            if self.allow_tools and stripped and looks_like_tool_call(stripped):
                self.state = "tool"
                return ""
            letters = sum(CJK_LETTERS if lang_mod.is_cjk(c) else 1
                          for c in self.raw if c.isalpha())
            if letters < self.judge_chars and not re.search(r"[.!?。！？]", self.raw[-2:]):
                return ""
            if self.check_language and not in_language(self.raw, self.lang):
                self.state, self.reject_reason = "rejected", "wrong_language"
                return ""
            self.state = "speaking"
        if self.state == "tool":
            return ""
        return self._advance(final=False)

    def finish(self) -> str:
        if self.state == "tool" or self.done:
            return ""
        if self.state == "judging":
            if lang_mod.is_degenerate(self.raw):
                self.state, self.reject_reason = "rejected", "degenerate"
                return ""
            if self.check_language and not in_language(self.raw, self.lang):
                self.state, self.reject_reason = "rejected", "wrong_language"
                return ""
            self.state = "speaking"
        out = self._advance(final=True)
        tail = self._filter.finish()
        self.spoken += tail
        out += tail
        if not re.search(r"\w", self.spoken):
            self.state, self.reject_reason = "rejected", "degenerate"
        return out

    @property
    def tool_call(self) -> ToolCall | None:
        return parse_tool_call(self.raw) if self.state == "tool" else None

    def _advance(self, final: bool) -> str:
        """Pass on raw text up to what is safe to speak."""
        # close finished sentences: a repeat ends the reply
        for m in re.finditer(r"[.!?。！？]+[\"')\]]*\s*", self.raw[self._sent_start:]):
            end = self._sent_start + m.end()
            sent = _norm(self.raw[self._sent_start:end])
            if sent and sent in self._seen:
                self.state = "looped"
                return self._emit_to(self._sent_start)
            if sent:
                self._seen.append(sent)
            self._sent_start = end
        if "{" in self.raw[self._sent_start:] and self.allow_tools and not final:
            # a tool call written after some words: hold it, parse it at the end
            return self._emit_to(min(self.raw.index("{", self._sent_start), len(self.raw)))
        partial = _norm(self.raw[self._sent_start:])
        if not final and partial and any(s.startswith(partial) for s in self._seen):
            return self._emit_to(self._sent_start)  # might be a repeat: hold
        if final and "{" in self.raw[self._sent_start:] and self.allow_tools:
            call = parse_tool_call(self.raw[self._sent_start:])
            if call is not None:
                self.state = "tool"
                return self._emit_to(self._sent_start)
        return self._emit_to(len(self.raw))

    def _emit_to(self, upto: int) -> str:
        if upto <= self._emitted:
            return ""
        out = self._filter.push(self.raw[self._emitted:upto])
        self._emitted = upto
        self.spoken += out
        return out


def _norm(sentence: str) -> str:
    return re.sub(r"[\W_]+", " ", sentence).strip().lower()


class Dialogue:
    def __init__(self, backend: ChatBackend | None, config: DialogueConfig,
                 memory: ConversationMemory, tools: ToolRegistry | None = None,
                 fast_paths: list[FastPath] | None = None, retriever: Retriever | None = None,
                 retriever_k: int = 3, tool_context: Callable[[], str] = lambda: "",
                 log: Callable[[str], None] = print,
                 robot_room: Callable[[], str] = lambda: "") -> None:
        self.backend = backend
        self.config = config
        self.memory = memory
        self.tools = tools or ToolRegistry()
        self.fast_paths = list(fast_paths or [])
        self.retriever = retriever
        self.retriever_k = retriever_k
        self.tool_context = tool_context
        self.robot_room = robot_room  # where "here" is, for checking the model's calls
        self.log = log
        self.backend_error: BackendError | None = None  # set when the backend failed to load

    # ------------------------------------------------------------------ one turn
    def respond(self, text: str, lang_hint: str, cancelled: Callable[[], bool],
                emit: Callable[[str], None]) -> TurnResult:
        t0 = time.monotonic()
        deadline = t0 + self.config.turn_timeout_s
        text = re.sub(r"\s+", " ", text or "").strip()
        lang = lang_mod.detect_language(text, lang_hint)
        spoken: list[str] = []
        timings: dict[str, float] = {}
        refused: list[dict] = []  # the model's calls the user's words did not ask for
        fast_calls: list[dict] = []  # actions of a fast answer whose rest is answered next
        partial = False  # a fast answer was spoken and its rest is being answered

        def ms() -> float:
            return round((time.monotonic() - t0) * 1000, 1)

        def say(piece: str) -> None:
            if piece and not cancelled():
                if not spoken:
                    timings["first_emit"] = ms()
                spoken.append(piece)
                emit(piece)

        def done(route: str, finish: str, detail: str = "", **kw) -> TurnResult:
            if cancelled():
                finish = "cancelled"
            kw["tool_calls"] = fast_calls + kw.get("tool_calls", [])
            return TurnResult(text="".join(spoken), route=route, finish_reason=finish,
                              lang=lang, detail=detail, elapsed_s=time.monotonic() - t0,
                              timings=timings, refused_calls=list(refused), **kw)

        self.memory.expire_if_idle()
        if not re.search(r"\w", text):
            say(line("empty_input", lang))
            return done("fallback", "stop", "empty transcript")
        detail = ""
        if len(text) > self.config.max_input_chars:
            detail = f"transcript cut from {len(text)} to {self.config.max_input_chars} chars"
            self.log(detail)
            text = text[: self.config.max_input_chars]
        heard = text  # what the memory keeps: ``text`` may become a fast answer's rest

        # 1. fast paths: no LLM needed
        for handler in self.fast_paths:
            t_fp = time.monotonic()
            try:
                answer = handler.handle(text, lang)
            except Exception as exc:  # a broken plug-in must not end the turn
                self.log(f"fast path {type(handler).__name__} failed: {exc}")
                continue
            finally:
                spent = (time.monotonic() - t_fp) * 1000
                if spent >= 20:  # name a slow plug-in (most take 0-10 ms)
                    timings[f"fp_{type(handler).__name__}"] = round(spent, 1)
            if answer is not None:
                timings["fast_paths"] = ms()
                if not answer.rest.strip():
                    result = self._fast(answer, heard, lang, say, done, remember=not partial)
                    if partial:
                        self._remember(heard, "".join(spoken))
                    return result
                # "turn off the fan and tell me a joke": the action first, then the rest is
                # answered by the paths after this one (later fast paths, knowledge, LLM)
                first = self._fast(answer, heard, lang, say, done, remember=False)
                if first.finish_reason != "stop":
                    return first
                fast_calls += first.tool_calls
                partial, text = True, answer.rest.strip()
                if lang != "zh":
                    say(" ")
        timings["fast_paths"] = ms()

        # 2. a question about the owner's own life: their notes answer it, or nobody does
        # (the model would make up a vet's name)
        passages: list[Passage] | None = None
        if (asks_about_owner(text) and not self._told(text)
                and not mentions_device(text, self.tools.known_devices())):
            passages = self._retrieve(text, lang, timings, ms)
            if not passages:
                say(line("dont_know", lang))
                self._remember(heard, "".join(spoken))
                return done("knowledge", "stop", "no document answers this question about "
                                                 "the owner")

        # 3. the LLM must be usable and speak the language (else no retrieval either: the
        # honest line is spoken at once)
        if self.backend is None or self.backend_error is not None:
            err = self.backend_error or BackendError("model", "no backend")
            say(line(err.kind, lang))
            return done("error", "error", str(err))
        if lang not in self.config.model_languages:
            say(line("wrong_language", lang))
            return done("fallback", "stop", f"the model does not speak {lang} "
                                            "(parameter model_languages)")

        # 4. knowledge
        if passages is None:
            passages = self._retrieve(text, lang, timings, ms)
        route = "knowledge" if passages else "llm"
        # the model cannot be trusted to use the passage: its draft is held whole and
        # checked before anything is said (see _knowledge_reply)
        checked = bool(passages) and isinstance(self.retriever, CheckingRetriever)

        # 5. the LLM, with bounded tool steps
        use_tools = len(self.tools) > 0 and self.config.tool_mode != "off"
        native = use_tools and self.config.tool_mode == "native" and self.backend.native_tools
        messages = self._prompt(text, lang, passages, use_tools and not native)
        if self.config.log_timings:
            timings["prompt_tokens"] = sum(self.backend.count_tokens(m.get("content") or "") + 8
                                           for m in messages)
        calls: list[dict] = []
        tools_on = use_tools  # off once a call was refused: the model then just answers
        ttft: float | None = None
        ntok = 0
        draft: list[str] = []  # checked turns: the gate's output, spoken once it is judged
        out = draft.append if checked else say

        def stop() -> bool:
            return cancelled() or time.monotonic() > deadline

        for step in range(self.config.max_tool_steps + 1):
            gate = ReplyGate(lang, self.config.language_check, self.config.judge_chars,
                             allow_tools=use_tools and not native,
                             said_before=self.memory.recent_replies(3))
            native_calls: list[ToolCall] = []
            finish = "stop"
            try:
                for delta in self.backend.stream(
                        messages, tools=self.tools.schemas() if tools_on else None,
                        max_tokens=self.config.max_tokens,
                        temperature=self.config.temperature, cancelled=stop,
                        text_only=use_tools and not tools_on):
                    if stop():
                        break
                    ntok += 1
                    if ttft is None:
                        ttft = time.monotonic() - t0
                        timings["first_token"] = ms()
                    native_calls += delta.tool_calls
                    out(gate.push(delta.text))
                    if (not checked and self.config.max_sentences and gate.state != "tool"
                            and count_sentences("".join(spoken)) >= self.config.max_sentences):
                        break  # enough said; closing the stream stops decoding
                    if delta.finish_reason:
                        finish = "length" if delta.finish_reason == "length" else "stop"
                    if gate.done:
                        break  # closing the stream stops decoding
            except BackendError as exc:
                self.log(f"backend {self.backend.name}: {exc}")
                say((" " if spoken else "") + line(exc.kind, lang))
                return done("error", "error", f"{exc.kind}: {exc}", tool_calls=calls,
                            ttft_s=ttft, tokens=ntok)
            if cancelled():
                return done(route, "cancelled", tool_calls=calls, ttft_s=ttft, tokens=ntok)
            if time.monotonic() > deadline:
                say((" " if spoken else "") + line("timeout", lang))
                return done("error", "error", "turn timeout", tool_calls=calls, ttft_s=ttft,
                            tokens=ntok)
            out(gate.finish())
            call_list = native_calls or ([gate.tool_call] if gate.tool_call else [])
            words = [speech_of(c) for c in call_list if c.name not in self.tools.tools]
            if call_list and len(words) == len(call_list) and all(words):
                # a made-up "say" tool carrying the answer: the answer, judged like any
                gate = ReplyGate(lang, self.config.language_check, self.config.judge_chars,
                                 allow_tools=False, said_before=self.memory.recent_replies(3))
                out(gate.push(" ".join(w for w in words if w)))
                out(gate.finish())
                call_list = []
            seen_calls = [(c["name"], c["arguments"]) for c in calls]
            if any((c.name, c.arguments) in seen_calls for c in call_list):
                call_list = []  # the same call again: a small model looping, not a new step
                gate.reject_reason = gate.reject_reason or "degenerate"
            if call_list and not tools_on:  # a second invented action: no more tries
                refused += [self._refusal(c, Verdict("drop", "after a refused call"))
                            for c in call_list]
                call_list = []
            if call_list and step < self.config.max_tool_steps:
                verdicts = [(c, self._ground(c, text)) for c in call_list]
                for c, v in verdicts:
                    if v.action != "run":
                        refused.append(self._refusal(c, v))
                ask = next((v for _, v in verdicts if v.action == "ask"), None)
                if ask is not None:  # the user wants a device action, but which device?
                    say(self._which(ask, lang))
                    self._remember(heard, "".join(spoken))
                    return done("fallback", "stop", f"asked back: {ask.reason}",
                                tool_calls=calls, ttft_s=ttft, tokens=ntok)
                run = [v.call for _, v in verdicts if v.action == "run" and v.call]
                if not run:  # nothing asked for: the model answers the words instead
                    tools_on = False
                    messages = self._refused_messages(call_list, native, messages, lang)
                    continue
                for call in run:
                    result = self.tools.execute(call)
                    self.log(f"tool {call.name}({json.dumps(call.arguments, ensure_ascii=False)})"
                             f" -> {json.dumps(result, ensure_ascii=False)}")
                    calls.append({"name": call.name, "arguments": call.arguments,
                                  "result": result})
                    messages += self._tool_messages(call, result, native, lang)
                if self.config.confirm_from_template and all(
                        getattr(self.tools.tools.get(c.name), "acts", "") in _TEMPLATED
                        for c in run):
                    # the line is known: no second completion (1-3 s for Qwen2.5-0.5B, and
                    # often a repeated call instead of a sentence)
                    say((" " if spoken else "") + " ".join(
                        self._confirm(c["result"], lang, c) for c in calls[-len(run):]))
                    self._remember(text, "".join(spoken))
                    return done("llm", "stop", "confirmed from a template", tool_calls=calls,
                                ttft_s=ttft, tokens=ntok)
                continue
            if gate.state == "tool" and not call_list:
                gate.reject_reason = "degenerate"  # JSON that is not a valid call
            if checked and not calls:
                return self._knowledge_reply(text, lang, passages, "".join(draft), gate,
                                             say, done, ttft_s=ttft, tokens=ntok)
            if checked:  # an action ran: the reply is about it, not about the passages
                say("".join(draft))
            if gate.state in ("rejected", "tool", "looped") and not spoken:
                reason = gate.reject_reason or "degenerate"
                if refused and not calls:  # words the model could only misread as an action
                    reason = "unclear"
                if calls:  # the action happened; confirm it plainly instead
                    say(self._confirm(calls[-1]["result"], lang, calls[-1]))
                    self._remember(heard, "".join(spoken))
                    return done("llm", "stop", f"model reply replaced ({reason})",
                                tool_calls=calls, ttft_s=ttft, tokens=ntok)
                say(line(reason, lang))
                return done("fallback", "stop", f"model reply replaced ({reason}): "
                            f"{gate.raw[:80]!r}", tool_calls=calls, ttft_s=ttft, tokens=ntok)
            self._remember(heard, "".join(spoken))
            return done(route, finish, detail, tool_calls=calls, ttft_s=ttft, tokens=ntok)
        return done(route, "stop", detail, tool_calls=calls, ttft_s=ttft, tokens=ntok)

    # ------------------------------------------------------------------ helpers
    def _retrieve(self, text: str, lang: str, timings: dict[str, float],
                  ms: Callable[[], float]) -> list[Passage]:
        passages: list[Passage] = []
        if self.retriever is None:
            return passages
        try:
            passages = self.retriever.retrieve(text, lang, self.retriever_k)
        except Exception as exc:
            self.log(f"retriever failed: {exc}")
        timings["retrieve"] = round(ms() - timings["fast_paths"], 1)
        return passages

    def _told(self, question: str) -> bool:
        """Did the user already tell the robot about this ("my name is Ann" before "what's
        my name?")? Then the conversation, not the documents, holds the answer."""
        topic = topic_words(question)
        if not topic:
            return False
        said = " ".join(m["content"] for m in self.memory.messages() if m["role"] == "user")
        heard = topic_words(said)
        return len(topic & heard) > len(topic) / 2

    def _ground(self, call: ToolCall, text: str) -> Verdict:
        """May the model's call run on the user's words? (gamgin_llm.grounding)"""
        tool = self.tools.tools.get(call.name)
        verdict = check_call(call, tool.moves if tool else "", text, self.tools.known_devices(),
                             self.robot_room())
        if verdict.action != "run":
            self.log(f"tool call not run ({verdict.action}): {verdict.reason}; "
                     f"user said {text[:80]!r}")
        return verdict

    @staticmethod
    def _refusal(call: ToolCall, verdict: Verdict) -> dict:
        return {"name": call.name, "arguments": call.arguments, "verdict": verdict.action,
                "reason": verdict.reason}

    def _which(self, verdict: Verdict, lang: str) -> str:
        """The ask-back: which device (naming the few that fit), or which parameter."""
        devices = self.tools.known_devices()
        sep, last = ("、", "还是") if lang == "zh" else (", ", " or ")

        def join(items: list[str]) -> str:
            return sep.join(items[:-1]) + last + items[-1] if len(items) > 1 else "".join(items)

        if verdict.param_of:
            dev = verdict.param_of
            return line("which_param", lang, name=device_name(dev, devices.get(dev, {}), lang),
                        options=join([param_name(p, lang) for p in verdict.options]))
        names = [device_name(i, devices.get(i, {}), lang) for i in verdict.options]
        if 1 <= len(names) <= 4:
            the = "" if lang == "zh" else "the "
            return line("which_device_of", lang, options=join([the + n for n in names]))
        return line("which_device", lang)

    @staticmethod
    def _refused_messages(calls: list[ToolCall], native: bool, messages: list[Message],
                          lang: str) -> list[Message]:
        """The conversation after a call nobody asked for: nothing was done, answer the
        words. No failure result: that is what made it apologise for a failed action. In
        prompt mode the invented call is left out and the question carries a short note in
        the user's language (an English note after a Mandarin question was parroted by
        Qwen2.5-0.5B: "The user did not ...")."""
        note_en = ("Nothing was done: the user did not ask to control anything. Reply to what "
                   "the user said in one short sentence, without JSON.")
        if native:
            out = list(messages)
            for call in calls:
                cid = call.id or f"call_{call.name}"
                out += [{"role": "assistant", "content": None, "tool_calls": [
                    {"id": cid, "type": "function", "function": {
                        "name": call.name, "arguments": json.dumps(call.arguments)}}]},
                    {"role": "tool", "tool_call_id": cid,
                     "content": json.dumps({"skipped": True, "message": note_en})}]
            return out
        note = ("（这不是让你控制设备，直接用一两句话回答。）" if lang == "zh"
                else "(Not a request to control anything: just answer in a sentence or two.)")
        out = list(messages)
        last = next(i for i in range(len(out) - 1, -1, -1) if out[i]["role"] == "user")
        out[last] = {"role": "user", "content": f"{out[last]['content']}\n{note}"}
        return out

    def _knowledge_reply(self, text: str, lang: str, passages: list[Passage], draft: str,
                         gate: ReplyGate, say: Callable[[str], None],
                         done: Callable[..., TurnResult], **kw) -> TurnResult:
        """Speak the model's knowledge-backed draft only if it carries the passage (the
        retriever's ``supports``); otherwise, or when the gate refused the draft, speak the
        best matching sentence with its source (``answer_extractively``), route knowledge.

        The draft is generated in full before anything is said: answers from a passage are
        one short sentence, and a draft that drops the fact must never reach the speaker,
        not even its first words."""
        refused = gate.state in ("rejected", "tool", "looped") and not draft.strip()
        if not refused:
            try:
                ok = self.retriever.supports(draft, passages, text)
            except Exception as exc:  # a broken check must not cost the answer
                self.log(f"retriever supports() failed: {exc}")
                ok = True
            if ok:
                say(draft)
                self._remember(text, draft)
                return done("knowledge", "stop", **kw)
        why = (gate.reject_reason or "degenerate") if refused else "draft without the fact"
        try:
            answer = self.retriever.answer_extractively(text, passages, lang)
        except Exception as exc:
            self.log(f"retriever answer_extractively() failed: {exc}")
            say(line("degenerate", lang))
            return done("fallback", "stop", f"extractive answer failed: {exc}", **kw)
        say(answer)
        self._remember(text, answer)
        return done("knowledge", "stop", f"extractive answer ({why}): {draft[:80]!r}", **kw)

    def _fast(self, answer: FastAnswer, text: str, lang: str, say: Callable[[str], None],
              done: Callable[..., TurnResult], remember: bool = True) -> TurnResult:
        calls = []
        for call in answer.actions:
            result = self.tools.execute(call) if call.name in self.tools else {
                "ok": False, "message": f"tool {call.name!r} is not available"}
            calls.append({"name": call.name, "arguments": call.arguments, "result": result})
            if not result.get("ok") and not answer.best_effort:
                say(answer.failure_text or line("tool_failed", lang,
                                                reason=str(result.get("message", ""))))
                return done(answer.route, "error", f"action {call.name} failed",
                            tool_calls=calls)
        say(answer.text)
        if remember:
            self._remember(text, answer.text)
        return done(answer.route, "stop", tool_calls=calls)

    def prompt_head(self, lang: str, prompt_tools: bool) -> list[Message]:
        """The messages every turn starts with (persona, language rule, tools, few-shot).
        They are the same for every turn *and every language*, so llama.cpp reuses their KV
        cache and only the memory and the new question are evaluated (a cold head is ~450
        tokens: 1-6 s of prefill on 2 busy cores, ~7 s for Qwen2.5-0.5B; a head per
        language would pay that at every switch of language); whatever varies per turn
        (retrieved passages, memory) comes after them. ``lang`` only picks the persona for
        a model that speaks one language."""
        langs = [x for x in self.config.model_languages if x in LANG_NAMES] or [lang]
        system = self.config.system_prompt.strip()
        if "zh" in langs and self.config.system_prompt_zh.strip():
            system += "\n" + self.config.system_prompt_zh.strip()
        if len(langs) > 1:
            system += ("\nAnswer in the language of the user's last message: "
                       + "; ".join(f"{LANG_NAMES[x]} for {LANG_NAMES[x]}" for x in langs)
                       + "." + ("用户说中文就用简体中文回答。" if "zh" in langs else ""))
        else:
            system += f"\nThe user speaks {LANG_NAMES[langs[0]]}. Answer only in " \
                      f"{LANG_NAMES[langs[0]]}."
        shots: list[Message] = []
        if prompt_tools:
            system += "\n" + self.tools.prompt_section(self.tool_context())
            chats = [("How are you?", "Woof! I feel great today.")]
            if "zh" in langs:  # a plain Mandarin exchange: chat is answered, not a tool call
                chats.append(("你今天开心吗？", "汪！开心，能陪着你就很开心。"))
            shots = self.tools.few_shot(self.config.few_shot, chats=tuple(chats))
        return [{"role": "system", "content": system}, *shots]

    def uses_prompt_tools(self) -> bool:
        use_tools = len(self.tools) > 0 and self.config.tool_mode != "off"
        return use_tools and not (self.config.tool_mode == "native"
                                  and self.backend is not None and self.backend.native_tools)

    def warm(self, langs: tuple[str, ...] = (), prompt: bool = True) -> dict[str, float]:
        """Pay the one-time costs before the first turn: each fast path and the retriever
        once per language (lazy dictionaries and models), and the prompt head through the
        backend (its KV cache then holds the head of the last language warmed: put the
        household's main language last). Returns ms per step; failures are logged only."""
        out: dict[str, float] = {}
        probe = {"en": "hello there", "zh": "你好"}
        langs = langs or tuple(self.config.model_languages)
        for lang in dict.fromkeys([*probe, *langs]):
            text = probe.get(lang, "hello")
            for h in [*self.fast_paths, self.retriever]:
                if h is None:
                    continue
                t = time.monotonic()
                try:
                    if hasattr(h, "handle"):
                        h.handle(text, lang)
                    if h is self.retriever:
                        h.retrieve(text, lang, self.retriever_k)
                except Exception as exc:
                    self.log(f"warm-up of {type(h).__name__} failed: {exc}")
                key = f"{type(h).__name__}.{lang}"
                out[key] = out.get(key, 0.0) + round((time.monotonic() - t) * 1000, 1)
        if not prompt or self.backend is None or self.backend_error is not None:
            return out
        prompt_tools = self.uses_prompt_tools()
        tools = self.tools.schemas() if len(self.tools) and self.config.tool_mode != "off" \
            else None
        for lang in langs:
            if lang not in LANG_NAMES:
                continue
            t = time.monotonic()
            messages = [*self.prompt_head(lang, prompt_tools),
                        {"role": "user", "content": probe.get(lang, "hello")}]
            try:
                for _ in self.backend.stream(messages, tools=tools, max_tokens=1,
                                             temperature=0.0, cancelled=lambda: False):
                    pass
            except BackendError as exc:
                self.log(f"warm-up of the prompt failed: {exc}")
            out[f"prompt.{lang}"] = round((time.monotonic() - t) * 1000, 1)
        return out

    def prefill_next(self, lang: str) -> float:
        """Between turns: evaluate the head plus the memory as the next turn will start,
        so its prompt only adds the new question (~15 tokens) instead of the last
        exchange too (~60-100 tokens: 150-500 ms of prefill on 2 busy cores). Returns ms."""
        if (self.backend is None or self.backend_error is not None
                or lang not in self.config.model_languages or lang not in LANG_NAMES):
            return 0.0
        t = time.monotonic()
        head = self.prompt_head(lang, self.uses_prompt_tools())
        count = self.backend.count_tokens
        room = 64  # a short question, as in _prompt's budget
        fixed = sum(count(m["content"]) + 8 for m in head)
        budget = self.config.n_ctx - self.config.max_tokens - fixed - 16 - room
        messages = [*head, *self.memory.messages(max(0, budget))]
        tools = self.tools.schemas() if len(self.tools) and self.config.tool_mode != "off" \
            else None
        try:
            for _ in self.backend.stream(messages, tools=tools, max_tokens=1,
                                         temperature=0.0, cancelled=lambda: False):
                pass
        except BackendError as exc:
            self.log(f"prefill of the next turn failed: {exc}")
        return round((time.monotonic() - t) * 1000, 1)

    def _prompt(self, text: str, lang: str, passages: list[Passage],
                prompt_tools: bool) -> list[Message]:
        head = self.prompt_head(lang, prompt_tools)
        count = self.backend.count_tokens if self.backend else (lambda s: len(s))
        facts = ""
        if passages:
            # after the cached head and the memory, right before the question
            facts = "Use these facts if they help:\n" + "\n".join(
                f"- {p.text.strip()}" for p in passages) + "\n\n"
        user = {"role": "user", "content": facts + text}
        fixed = sum(count(m["content"]) + 8 for m in [*head, user])
        budget = self.config.n_ctx - self.config.max_tokens - fixed - 16
        if budget < 0 and facts:  # the question matters more than the facts
            user = {"role": "user", "content": text}
            budget += count(facts)
        if budget < 0:  # the transcript alone is too long: keep its start
            keep = max(50, int(len(text) * (1 + budget / max(fixed, 1))))
            self.log(f"prompt over the context by {-budget} tokens; transcript cut to {keep}")
            user = {"role": "user", "content": text[:keep]}
            budget = 0
        return [*head, *self.memory.messages(budget), user]

    @staticmethod
    def _tool_messages(call: ToolCall, result: dict, native: bool, lang: str = "en"
                       ) -> list[Message]:
        if native:
            cid = call.id or f"call_{call.name}"
            return [{"role": "assistant", "content": None, "tool_calls": [
                {"id": cid, "type": "function", "function": {
                    "name": call.name, "arguments": json.dumps(call.arguments)}}]},
                {"role": "tool", "tool_call_id": cid,
                 "content": json.dumps(result, ensure_ascii=False)}]
        return [{"role": "assistant", "content": json.dumps(
                    {"tool": call.name, "arguments": call.arguments}, ensure_ascii=False)},
                {"role": "user", "content": result_message(call, result, lang)}]

    def _confirm(self, result: dict, lang: str, call: dict | None = None) -> str:
        """A plain line for a call whose reply the model got wrong: what a read found, or
        which device was set how."""
        devices = self.tools.known_devices()
        name = (call or {}).get("name")
        args = (call or {}).get("arguments") or {}

        def called(dev_id: str) -> str:
            return device_name(dev_id, devices.get(dev_id, {}), lang)

        if result.get("ok") and name == "list_devices":
            try:
                devs = json.loads(str(result.get("message", "")))
                on = [called(str(d.get("id"))) for d in devs if d.get("on")]
            except (ValueError, TypeError, AttributeError):
                on = None
            if on is not None:
                if lang == "zh":
                    return f"开着的有：{'、'.join(on)}。" if on else "现在什么都没开。"
                return f"On now: {', '.join(on)}." if on else "Nothing is on right now."
        if result.get("ok") and name == "set_power" and args.get("device_id"):
            dev, on = called(str(args["device_id"])), bool(args.get("on"))
            if lang == "zh":
                return f"好的，{dev}{'打开' if on else '关上'}了。"
            return f"Okay, the {dev} is {'on' if on else 'off'}."
        if result.get("ok") and name == "set_param" and args.get("device_id"):
            dev, par = called(str(args["device_id"])), param_name(str(args.get("name")), lang)
            value = result.get("value", args.get("value"))
            if lang == "zh":
                return f"好的，{dev}的{par}调到{value:g}了。" if isinstance(value, (int, float)) \
                    else "好的，办好了。"
            return f"Okay, the {dev}'s {par} is {value:g} now." \
                if isinstance(value, (int, float)) else "Done."
        if result.get("ok"):
            return "好的，办好了。" if lang == "zh" else "Done."
        return line("tool_failed", lang, reason=str(result.get("message", ""))[:120])

    def _remember(self, user: str, reply: str) -> None:
        if reply.strip():
            self.memory.add(user, reply.strip())

    def reset(self) -> int:
        return self.memory.reset()
