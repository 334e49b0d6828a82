"""transcript -> tokens (+ reply). ROS wiring of gamgin_llm.core.Dialogue.

One worker thread runs one turn at a time (the model is not re-entrant). A newer final
transcript, a TurnState CANCELLED for turn N, or a TurnState of a newer turn sets the
running turn's cancel flag, which the dialogue polls between tokens.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass, field

from std_msgs.msg import Header, String
from std_srvs.srv import Trigger

from gamgin_common import qos
from gamgin_common.paths import data_dir, resolve_model
from gamgin_common.stage import StageError, StageNode, run_stage
from gamgin_interfaces.msg import DeviceState, TokenChunk, Transcript, TurnState
from gamgin_llm.backends import make_backend
from gamgin_llm.chat import BackendError
from gamgin_llm.core import Dialogue, DialogueConfig, TurnResult
from gamgin_llm.memory import ConversationMemory
from gamgin_llm.router import HandlerContext, load_object
from gamgin_llm.tools import ToolRegistry

DEFAULT_PROMPT = ("You are Jinjian (金坚), a playful robot dog who lives with a family. "
                  "Answer in one or two short, friendly sentences of plain words.")
# 少点废话: one or two short spoken sentences, no lists, no markdown, no emoji
DEFAULT_PROMPT_ZH = ("你是金坚，一只和主人一家住在一起的机器狗，活泼、友好。"
                     "回答要简短：一两句口语化的短句，不要列表，不要表情符号，少点废话。")


@dataclass
class Job:
    turn_id: int
    text: str
    lang: str
    cancel: threading.Event = field(default_factory=threading.Event)


class LlmNode(StageNode):
    def __init__(self) -> None:
        super().__init__("llm")
        p = self.declare_parameter
        self.backend_name = str(p("backend", "llama_cpp").value)
        self.model_path = str(p("model_path", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf").value)
        self.n_ctx = int(p("n_ctx", 2048).value)
        self.n_threads = int(p("n_threads", 2).value)
        self.n_gpu_layers = int(p("n_gpu_layers", 0).value)
        self.chat_format = str(p("chat_format", "").value)
        self.constrain_tools = bool(p("constrain_tools", False).value)
        self.base_url = str(p("base_url", "http://127.0.0.1:8080/v1").value)
        self.model_name = str(p("model", "").value)
        self.api_key = str(p("api_key", "").value)
        self.api_key_env = str(p("api_key_env", "OPENAI_API_KEY").value)
        self.connect_timeout_s = float(p("connect_timeout_s", 3.0).value)
        self.read_timeout_s = float(p("read_timeout_s", 20.0).value)
        self.tool_choice = str(p("tool_choice", "auto").value)  # native mode: auto | required
        self.cfg = DialogueConfig(
            system_prompt=str(p("system_prompt", DEFAULT_PROMPT).value),
            system_prompt_zh=str(p("system_prompt_zh", DEFAULT_PROMPT_ZH).value),
            max_tokens=int(p("max_tokens", 96).value),
            max_sentences=int(p("max_sentences", 2).value),
            confirm_from_template=bool(p("confirm_from_template", True).value),
            temperature=float(p("temperature", 0.3).value),
            n_ctx=self.n_ctx,
            max_input_chars=int(p("max_input_chars", 1000).value),
            max_tool_steps=int(p("max_tool_steps", 3).value),
            tool_mode=str(p("tool_mode", "prompt").value),
            language_check=bool(p("language_check", True).value),
            judge_chars=int(p("judge_chars", 12).value),
            turn_timeout_s=float(p("turn_timeout_s", 30.0).value),
            model_languages=tuple(p("model_languages", ["en", "zh"]).value or []),
        )
        self.memory_max_tokens = int(p("memory_max_tokens", 768).value)
        self.idle_reset_s = float(p("idle_reset_s", 300.0).value)
        self.fast_paths = list(p("fast_paths", ["gamgin_llm.router:StopHandler"]).value or [])
        self.retriever_name = str(p("retriever", "").value)
        self.retriever_options = str(p("retriever_options", "{}").value)
        self.retriever_k = int(p("retriever_k", 3).value)
        self.tool_groups = list(p("tools", ["devices", "music"]).value or [])
        self.service_timeout_s = float(p("service_timeout_s", 2.0).value)
        # no answer after this: the same (idempotent) request once more (lost on Wi-Fi)
        self.service_retry_s = float(p("service_retry_s", 0.5).value)
        self.web_search_url = str(p("web_search_url", "").value)
        self.warmup = bool(p("warmup", True).value)
        # keep the warmed prompt head on disk (<data>/cache/llm): a restart skips its prefill
        self.prefix_cache = bool(p("prefix_cache", True).value)
        self.dialogue: Dialogue | None = None
        self.handler_context: HandlerContext | None = None  # what the fast paths see
        self.device_tools = None
        self.music_tools = None
        self._jobs: queue.Queue[Job | None] = queue.Queue()
        self._current: Job | None = None
        self._newest = 0  # highest turn_id accepted
        self._cancelled_upto = 0  # turns <= this are cancelled everywhere
        self._lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._last_load_try = 0.0
        self._warm_due = 0.0  # monotonic time to re-warm the prompt head (0 = not needed)
        # when to forget devices seeded from the last run that no live state confirmed
        self._confirm_due = 0.0
        self._devices_file = data_dir() / "cache" / "llm" / "devices.json"
        for k, v in (("backend", self.backend_name), ("tool_mode", self.cfg.tool_mode),
                     ("fast_paths", ",".join(self.fast_paths) or "none"),
                     ("retriever", self.retriever_name or "off")):
            self.health.value(k, v)

    # ------------------------------------------------------------------ lifecycle
    def configure_stage(self) -> None:
        opts = dict(model_path=resolve_model(self.model_path), n_ctx=self.n_ctx,
                    n_threads=self.n_threads, n_gpu_layers=self.n_gpu_layers,
                    chat_format=self.chat_format, constrain_tools=self.constrain_tools,
                    base_url=self.base_url, model=self.model_name, api_key=self.api_key,
                    api_key_env=self.api_key_env, connect_timeout_s=self.connect_timeout_s,
                    read_timeout_s=self.read_timeout_s,
                    native_tools=self.cfg.tool_mode == "native", tool_choice=self.tool_choice,
                    prefix_cache_dir=data_dir() / "cache" / "llm" if self.prefix_cache else "")
        try:
            backend = make_backend(self.backend_name, **opts)
        except ValueError as exc:
            raise StageError(f"{exc} (parameter 'backend')") from exc
        self.health.value("model", self.model_path if self.backend_name == "llama_cpp"
                          else f"{self.base_url} {self.model_name}".strip())

        self.tokens_pub = self.stage_publisher(TokenChunk, "tokens", qos.TOKENS)
        self.reply_pub = self.stage_publisher(TokenChunk, "reply", qos.EVENTS)
        registry = ToolRegistry()
        if "devices" in self.tool_groups:
            from gamgin_llm.ros_tools import DeviceTools

            self.device_tools = DeviceTools(self, self.service_timeout_s, self.service_retry_s)
            if self.prefix_cache:  # the head the prefix cache holds names these devices
                self.health.value("devices_seeded", self.device_tools.seed(self._devices_file))
            self.device_tools.register(registry)
            self.stage_subscription(DeviceState, "devices/state", self._on_device_state,
                                    qos.DEVICE_STATE)
        if "music" in self.tool_groups:
            from gamgin_llm.ros_tools import MusicTools

            self.music_tools = MusicTools(self, "music/command", qos.EVENTS)
            self.music_tools.register(registry)
        if self.web_search_url:
            from gamgin_llm.web_search import WebSearch

            registry.register(WebSearch(self.web_search_url).tool())
        self.health.value("tools", ",".join(registry.tools) or "none")

        context = self.handler_context = HandlerContext(tools=list(registry.tools))
        if self.device_tools is not None:
            context.devices = self.device_tools.devices
        handlers = []
        for dotted in self.fast_paths:
            try:
                handlers.append(load_object(dotted, context))
            except Exception as exc:  # say which plug-in and why
                raise StageError(f"fast path {dotted!r}: {exc} (parameter 'fast_paths')") from exc
        retriever = None
        if self.retriever_name:
            try:
                retriever = load_object(self.retriever_name, context,
                                        **json.loads(self.retriever_options or "{}"))
            except Exception as exc:
                raise StageError(f"retriever {self.retriever_name!r}: {exc} "
                                 "(parameters 'retriever', 'retriever_options')") from exc

        memory = ConversationMemory(self.memory_max_tokens, self.idle_reset_s,
                                    backend.count_tokens)
        self.dialogue = Dialogue(
            backend, self.cfg, memory, registry, handlers, retriever, self.retriever_k,
            tool_context=self.device_tools.context if self.device_tools else (lambda: ""),
            log=lambda s: self.get_logger().info(s),
            robot_room=lambda: context.robot_room or "")
        if self.device_tools is not None:
            # devices/state may have arrived while configuring: rebuild with all seen so far
            self.device_tools.register(registry)
        # Topics before the model: DDS discovery and matching (~1-2 s with a dozen peers)
        # overlap the load and warm-up; no callback runs before the node spins.
        self.stage_subscription(Transcript, "transcript", self._on_transcript, qos.EVENTS)
        self.stage_subscription(TurnState, "turn/state", self._on_turn_state, qos.STATE)
        # where the robot is (latched, from navigation): the device fast path's "here"
        self.stage_subscription(String, "robot/room", self._on_robot_room, qos.STATE)
        self.stage_service(Trigger, "llm/reset", self._on_reset)
        self._load_backend()

    def _load_backend(self) -> None:
        """Load the model. A failure does not stop the node: fast paths keep working and LLM
        turns get a spoken apology, while health says what is wrong and how to fix it."""
        d = self.dialogue
        self._last_load_try = time.monotonic()
        t0 = time.monotonic()
        try:
            d.backend.load()
            d.backend_error = None
            self.health.value("load_s", f"{time.monotonic() - t0:.2f}")
            if self.warmup:
                restored = d.backend.restore_prefix() if hasattr(d.backend, "restore_prefix") \
                    else 0
                self.health.value("prefix_restored_tokens", restored)
                saved = self._warm()
                reused = d.backend.prefix_reused() if restored else 0
                self.get_logger().info(f"prompt head: {restored} tokens restored from the "
                                       f"prefix cache, {reused} reused, {saved} saved")
            self.health.ok(f"ready ({self.backend_name})")
        except BackendError as exc:
            d.backend_error = exc
            self.get_logger().error(f"LLM backend not usable: {exc}")
            self.health.error(f"LLM {exc.kind}: {exc}")

    def _warm(self) -> int:
        """Fast paths, retriever and the real prompt head once, so the first turn is not
        the one that pays for lazy loading and a cold ~450-token prefill (measured 5.6 s
        to first audio in the graph before this). The warmed head goes to the prefix cache
        with the devices it names; returns the tokens saved."""
        d = self.dialogue
        if d is None:
            return 0
        t0 = time.monotonic()
        # a remote server may be slow or stalled: only the in-process model is warmed
        steps = d.warm(prompt=self.backend_name == "llama_cpp")
        self._warm_due = 0.0
        self.health.value("warm_s", f"{time.monotonic() - t0:.2f}")
        self.get_logger().info("warm-up " + ", ".join(f"{k} {v:.0f} ms"
                                                      for k, v in steps.items()))
        if not self.prefix_cache or d.backend_error is not None \
                or not hasattr(d.backend, "save_prefix"):
            return 0
        if self.device_tools is not None:
            self.device_tools.save(self._devices_file)
        return d.backend.save_prefix()

    def activate_stage(self) -> None:
        self._jobs = queue.Queue()
        self._worker = threading.Thread(target=self._work, name="llm-turns", daemon=True)
        self._worker.start()
        if self.dialogue is not None and self.dialogue.backend_error is not None:
            self.health.error(f"LLM {self.dialogue.backend_error.kind}: "
                              f"{self.dialogue.backend_error}")

    def deactivate_stage(self) -> None:
        with self._lock:
            if self._current is not None:
                self._current.cancel.set()
        self._jobs.put(None)
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None

    def cleanup_stage(self) -> None:
        if self.dialogue is not None and self.dialogue.backend is not None:
            self.dialogue.backend.close()
        self.dialogue = None
        for tools in (self.device_tools, self.music_tools):
            if tools is not None:
                tools.destroy()
        self.device_tools = self.music_tools = None

    # ------------------------------------------------------------------ input
    def _on_transcript(self, msg: Transcript) -> None:
        if not msg.is_final:
            return
        with self._lock:
            tid = msg.turn_id
            # turn_id 0 = outside any turn (e.g. typed text): always a new utterance
            if tid != 0 and (tid <= self._cancelled_upto or tid <= self._newest):
                self.health.count("stale_transcripts")
                self.get_logger().warning(f"ignored transcript of old/cancelled turn {tid}")
                return
            self._newest = max(self._newest, tid)
            if self._current is not None and (tid == 0 or self._current.turn_id < tid):
                self._current.cancel.set()  # a newer turn supersedes the running one
        self.health.count("transcripts")
        self._jobs.put(Job(tid, msg.text, msg.language))

    def _on_turn_state(self, msg: TurnState) -> None:
        with self._lock:
            cur = self._current
            if msg.state == TurnState.CANCELLED:
                self._cancelled_upto = max(self._cancelled_upto, msg.turn_id)
                if cur is not None and cur.turn_id <= msg.turn_id:
                    cur.cancel.set()
            elif cur is not None and msg.turn_id > cur.turn_id and cur.turn_id != 0:
                cur.cancel.set()

    def _on_device_state(self, msg: DeviceState) -> None:
        if not self._confirm_due and self.device_tools is not None \
                and not self.device_tools.confirmed():
            # devices/state is latched: all devices arrive in a burst once matched
            self._confirm_due = time.monotonic() + 3.0
        if (self.device_tools is not None and self.device_tools.on_state(msg)
                and self.dialogue is not None):
            # new device: rebuild the schemas so the model (and its grammar) can name it
            self.device_tools.register(self.dialogue.tools)
            self.health.value("devices", len(self.device_tools.devices))
            # the prompt head (tool list) changed: re-warm its KV cache once the burst of
            # device states is over, on the worker thread (the model is not re-entrant)
            self._warm_due = time.monotonic() + 0.5

    def _on_robot_room(self, msg: String) -> None:
        if self.handler_context is not None:
            self.handler_context.robot_room = msg.data.strip()
            self.health.value("robot_room", msg.data.strip() or "unknown")

    def _on_reset(self, request: Trigger.Request, response: Trigger.Response):
        n = self.dialogue.reset() if self.dialogue is not None else 0
        self.health.count("memory_resets")
        response.success, response.message = True, f"forgot {n} exchanges"
        return response

    # ------------------------------------------------------------------ turns
    def _work(self) -> None:
        while True:
            try:
                job = self._jobs.get(timeout=0.25)
            except queue.Empty:
                now = time.monotonic()
                if self._confirm_due and now > self._confirm_due:
                    self._confirm_due = 0.0
                    if self.device_tools is not None and self.device_tools.drop_unconfirmed() \
                            and self.dialogue is not None:
                        self.device_tools.register(self.dialogue.tools)
                        self._warm_due = now
                if (self.warmup and self._warm_due and now > self._warm_due
                        and self.dialogue is not None):
                    self._warm()
                continue
            if job is None:
                return
            with self._lock:
                superseded = (job.turn_id != 0 and (job.turn_id < self._newest
                                                    or job.turn_id <= self._cancelled_upto))
                self._current = job
            try:
                if superseded or job.cancel.is_set():
                    self._publish_final(job.turn_id, 0, "cancelled", "", "")
                    self.health.count("cancelled")
                    continue
                lang = self._run(job)
                if (lang and self.warmup and self.backend_name == "llama_cpp"
                        and self._jobs.empty() and self.dialogue is not None):
                    # while the reply plays: the next turn then only evaluates its question
                    self.health.value("prefill_ms", f"{self.dialogue.prefill_next(lang):.0f}")
            except Exception as exc:  # the worker must survive any turn
                self.get_logger().error(f"turn {job.turn_id} failed: {exc!r}")
                self.health.count("errors")
            finally:
                with self._lock:
                    self._current = None

    def _run(self, job: Job) -> str:
        """One turn; returns its language ("" when nothing ran)."""
        d = self.dialogue
        if d is None:
            return ""
        if d.backend_error is not None and time.monotonic() - self._last_load_try > 10.0:
            self._load_backend()  # the model file may have been fixed meanwhile
        seq = 0

        def emit(piece: str) -> None:
            nonlocal seq
            if job.cancel.is_set():
                return
            # route is known for sure only at the end: it is on the final chunk
            self.tokens_pub.publish(self._chunk(job.turn_id, seq, piece, False, "", ""))
            seq += 1

        result: TurnResult = d.respond(job.text, job.lang, job.cancel.is_set, emit)
        self._publish_final(job.turn_id, seq, result.finish_reason, result.route, result.text)
        self._report(job, result)
        return result.lang

    def _publish_final(self, turn_id: int, seq: int, finish: str, route: str,
                       text: str) -> None:
        self.tokens_pub.publish(self._chunk(turn_id, seq, "", True, finish, route))
        self.reply_pub.publish(self._chunk(turn_id, 0, text, True, finish, route))

    def _chunk(self, turn_id: int, seq: int, text: str, final: bool, finish: str,
               route: str) -> TokenChunk:
        msg = TokenChunk(header=Header(frame_id="llm"), turn_id=turn_id, seq=seq, text=text,
                         is_final=final, finish_reason=finish, route=route)
        msg.header.stamp = self.get_clock().now().to_msg()
        return msg

    def _report(self, job: Job, r: TurnResult) -> None:
        h = self.health
        h.count("turns")
        h.count(f"route_{r.route}")
        if r.finish_reason == "cancelled":
            h.count("cancelled")
        h.count("tool_calls", len(r.tool_calls))
        h.value("last_route", r.route)
        h.value("last_finish", r.finish_reason)
        h.value("last_ttft_ms", "-" if r.ttft_s is None else f"{r.ttft_s * 1000:.0f}")
        h.value("last_turn_s", f"{r.elapsed_s:.2f}")
        h.value("memory_exchanges", len(self.dialogue.memory) if self.dialogue else 0)
        msg = (f"turn {job.turn_id} [{r.lang}] route={r.route} finish={r.finish_reason} "
               f"{r.elapsed_s:.2f}s: {r.text[:120]!r}")
        if r.detail:
            msg += f" ({r.detail[:200]})"
        if r.timings:  # ms from the turn's start: where an LLM turn's time went
            msg += " [" + " ".join(f"{k}={v:g}" for k, v in r.timings.items()) + "]"
        if r.route == "error":
            self.get_logger().error(msg)
            h.count("errors")
            h.warn(f"last turn failed: {r.detail[:160]}")
        else:
            self.get_logger().info(msg)
            if self.dialogue is not None and self.dialogue.backend_error is None:
                h.ok(f"ready ({self.backend_name}); last route {r.route}")


def standby_prewarm() -> None:
    """For a standby process that may become the LLM (gamgin_common.standby): jieba's
    dictionary, which the knowledge fast path and retriever need for every turn (mapped from
    the graph's shared cache, gamgin_common.zh_words: ~0.1 s, 0.6 s when jieba loads its own);
    paid here, before any crash, not by the turn that waits for the restart."""
    try:
        import jieba  # noqa: F401
    except ImportError:
        return
    from gamgin_common import zh_words

    zh_words.install()


def main(args: list[str] | None = None) -> None:
    run_stage(LlmNode, args)


if __name__ == "__main__":
    main()
