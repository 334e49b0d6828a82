"""A MultiThreadedExecutor that does not spin a core on a busy topic.

rclpy before 10.0.4 (ros2/rclpy#1452, fixed upstream by #1547) yields a task again while
it still waits in the thread pool; the executor submits it again, and again, without
waiting, holding the GIL so the pool threads cannot start the work. On a 50/s topic
(audio/mic) this can tip over into a self-sustaining state: measured here, the STT's
executor thread at 100 % of a core with no one speaking, and the STT worker seconds behind
real time (end of speech -> final transcript 1-4 s instead of 0.3 s). This executor
submits a task once until a pool thread has started it, and yields the GIL meanwhile.
"""

from __future__ import annotations

import threading
import time

from rclpy.executors import (
    ConditionReachedException,
    ExternalShutdownException,
    MultiThreadedExecutor,
    ShutdownException,
    TimeoutException,
)


class SteadyExecutor(MultiThreadedExecutor):
    def __init__(self, num_threads: int | None = None, **kwargs) -> None:
        super().__init__(num_threads=num_threads, **kwargs)
        self._queued: set = set()  # submitted, not yet started by a pool thread
        self._queued_lock = threading.Lock()
        # the internals this relies on (rclpy 7-9); otherwise behave as the base class
        self._patched = hasattr(self, "_executor") and isinstance(
            getattr(self, "_futures", None), list)

    def _run(self, handler) -> None:
        with self._queued_lock:
            self._queued.discard(handler)  # started: a coroutine may be resumed later
        handler()

    def _spin_once_impl(self, timeout_sec=None, wait_condition=lambda: False) -> None:
        if not self._patched:
            return super()._spin_once_impl(timeout_sec, wait_condition)
        try:
            handler, _entity, _node = self.wait_for_ready_callbacks(
                timeout_sec, None, wait_condition)
        except (ExternalShutdownException, ShutdownException, TimeoutException,
                ConditionReachedException):
            return
        with self._queued_lock:
            again = handler in self._queued
            self._queued.add(handler)
        if again:
            time.sleep(0.001)  # let a pool thread take the GIL and start it
            return
        self._executor.submit(self._run, handler)
        self._futures.append(handler)
        for future in self._futures[:]:
            if future.done():
                self._futures.remove(future)
                future.result()  # raise any exception of a callback
