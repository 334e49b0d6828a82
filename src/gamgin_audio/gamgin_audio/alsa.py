"""libasound's own messages, counted or logged instead of printed to stderr. ctypes, no ROS.

On ALSA devices that cannot mmap (the PulseAudio/PipeWire ``pulse`` plugin, i.e. every
sink or source we pick by name), PortAudio recovers from each xrun with
``snd_pcm_recover(pcm, -EPIPE, silent=0)``, and libasound then prints
"ALSA lib pcm.c:NNNN:(snd_pcm_recover) underrun occurred" on stderr from C: one line per
late block, a flood in the terminal of `gamgin up` on a loaded machine. The stream
callback's status flag already reports the same event (counted as ``underflows``), so
here the line is taken off stderr and counted; any other libasound message still reaches
the node's log. ``snd_lib_error_set_handler`` is process-wide; tested with alsa-lib 1.2.8
(Debian 12). alsa-lib 1.2.14+ (Debian 13) hands its error-priority log messages to the
same handler and drops the others once one is set (read in its error.c, not run here).
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

# void handler(const char *file, int line, const char *function, int err, const char *fmt,
# ...): only the fixed arguments are read (variadic ones are in registers the callee may
# ignore), so a message with arguments is shown with its format string unexpanded
_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                            ctypes.c_int, ctypes.c_char_p)

_lib: ctypes.CDLL | None = None
_handler = None  # the installed C callback: kept referenced for the process's life
_routes: tuple[Callable[[], None], Callable[[str], None]] | None = None  # (xrun, message)


def _text(b: bytes | None) -> str:
    return b.decode(errors="replace") if b else ""


def _handle(file: bytes | None, line: int, function: bytes | None, err: int,
            fmt: bytes | None) -> None:
    try:  # an exception must never unwind into libasound (PortAudio's audio thread)
        if _routes is None:
            return
        on_xrun, on_message = _routes
        fn, text = _text(function), _text(fmt)
        if fn == "snd_pcm_recover" and text.endswith("occurred"):  # "%s occurred"
            on_xrun()
            return
        if err and _lib is not None:
            text += f": {_text(_lib.snd_strerror(err))}"
        on_message(f"ALSA lib {_text(file)}:{line}:({fn}) {text}")
    except Exception:
        pass


def install(on_xrun: Callable[[], None], on_message: Callable[[str], None]) -> bool:
    """Route this process's libasound messages: xrun lines to ``on_xrun()``, anything else
    (formatted like libasound's own line) to ``on_message``. Both are called from whatever
    thread libasound runs in, often PortAudio's real-time one: keep them short. Calling
    again replaces the callbacks. False when there is no libasound (nothing to quiet)."""
    global _lib, _handler, _routes
    _routes = (on_xrun, on_message)
    if _handler is not None:
        return True
    try:  # the same loaded library PortAudio uses (same soname)
        _lib = ctypes.CDLL(ctypes.util.find_library("asound") or "libasound.so.2")
        _lib.snd_strerror.restype = ctypes.c_char_p
        _lib.snd_strerror.argtypes = [ctypes.c_int]
        handler = _HANDLER(_handle)
        try:  # a libasound built without NDEBUG also sends debug-only messages to it...
            debug = ctypes.c_void_p.in_dll(_lib, "snd_err_msg")
        except ValueError:
            debug = None
        quiet = debug.value if debug is not None else None
        _lib.snd_lib_error_set_handler(handler)
        if debug is not None:
            debug.value = quiet  # ...which by default print only with LIBASOUND_DEBUG set
    except (OSError, AttributeError):
        return False
    _handler = handler
    return True


def first_of_a_decade(n: int) -> bool:
    """1, 10, 100, 1000…: when a counted event is worth a log line (the count itself is
    on /diagnostics)."""
    return n > 0 and n == 10 ** (len(str(n)) - 1)


def report_to(node, kind: str) -> bool:
    """This process's libasound messages to a StageNode: xruns counted as
    ``alsa_<kind>s`` on its /diagnostics and logged the 1st, 10th, 100th… time, any other
    message to its log. Install after ``import sounddevice``: PortAudio's start-up probe of
    every ALSA device is noisy and sounddevice mutes stderr for it, not a handler."""
    seen = 0

    def xrun() -> None:
        nonlocal seen
        seen += 1
        node.health.count(f"alsa_{kind}s")
        if first_of_a_decade(seen):
            what = ("the output buffer ran dry" if kind == "underrun"
                    else "captured audio was not read in time")
            node.get_logger().warning(
                f"ALSA {kind} #{seen}: {what}; counted as alsa_{kind}s on /diagnostics, "
                "logged again at 10, 100, 1000… (raise 'latency' if it keeps growing)")

    return install(xrun, lambda text: node.get_logger().warning(text))
