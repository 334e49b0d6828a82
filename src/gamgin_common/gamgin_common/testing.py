"""Helpers for integration tests with real processes, real DDS and real audio.

No mocks: nodes run as their installed executables in their own processes, on a
ROS_DOMAIN_ID unique to the test run, and audio goes through PulseAudio null sinks
(a virtual microphone and a virtual speaker) that the tests create themselves.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
import wave
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from gamgin_common.paths import find_executable

_used_domains: set[int] = set()


def unique_domain_id() -> int:
    """A ROS domain no other test module of this run uses (1..101: the portable range for
    Fast DDS on Linux, and not 0, the default a developer's running graph is on)."""
    rng = random.Random(os.getpid() ^ time.time_ns())
    free = [d for d in range(1, 102) if d not in _used_domains] or list(range(1, 102))
    domain = rng.choice(free)
    _used_domains.add(domain)
    return domain


def test_env(domain_id: int, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["ROS_DOMAIN_ID"] = str(domain_id)
    env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class NodeProcess:
    """One installed node executable in its own process, namespaced under /gamgin."""

    def __init__(self, package: str, executable: str, name: str, env: dict[str, str],
                 params: dict[str, object] | None = None, params_files: list[str] | None = None,
                 namespace: str = "/gamgin", log_dir: str | None = None) -> None:
        self.cmd = [str(find_executable(package, executable)), "--ros-args",
                    "-r", f"__node:={name}", "-r", f"__ns:={namespace}"]
        for f in params_files or []:
            self.cmd += ["--params-file", f]
        for k, v in (params or {}).items():
            self.cmd += ["-p", f"{k}:={_param_literal(v)}"]
        self.name, self.env = name, env
        self.log_path = Path(log_dir or tempfile.mkdtemp(prefix="gamgin-test-")) / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @classmethod
    def from_graph(cls, node, namespace: str, config_dir: Path, env: dict[str, str],
                   log_dir: str | Path) -> NodeProcess:
        """A node of config/graph.yaml (a gamgin.graph.GraphNode), started exactly as
        `gamgin up` starts it (prefix, params files), but as our own child process."""
        proc = cls(node.package, node.executable, node.name, env, namespace=namespace,
                   log_dir=str(log_dir))
        proc.cmd = [*node.prefix(), str(find_executable(node.package, node.executable)),
                    *node.ros_args(namespace, Path(config_dir))]
        return proc

    @classmethod
    def from_unit(cls, unit, namespace: str, config_dir: Path, env: dict[str, str],
                  log_dir: str | Path) -> NodeProcess:
        """A process of config/graph.yaml (a gamgin.graph.Unit: one node, or several composed
        in a stage container), started exactly as `gamgin up` starts it."""
        proc = cls.from_graph(unit.node, namespace, config_dir, env, log_dir)
        if unit.composed:
            proc.name = unit.name
            proc.log_path = Path(log_dir) / f"{unit.name}.log"
            proc.cmd = unit.command(namespace, Path(config_dir), "",
                                    str(find_executable("gamgin_common", "stage_container")))
        return proc

    def start(self) -> NodeProcess:
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()
        return self.proc.returncode

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _param_literal(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v if v else "''"
    return str(v)


def wait_for(pred: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(interval)
    return pred()


# ---------------------------------------------------------------------- audio
def pulse_running() -> bool:
    return subprocess.run(["pactl", "info"], capture_output=True).returncode == 0


def ensure_pulse() -> None:
    """Start a user-mode PulseAudio daemon if none answers (works as root, with a warning)."""
    if shutil.which("pulseaudio") is None:
        raise RuntimeError("pulseaudio not installed: run scripts/setup")
    if pulse_running():
        return
    subprocess.run(["pulseaudio", "-D", "--exit-idle-time=-1", "-n",
                    "--load=module-native-protocol-unix", "--load=module-always-sink"],
                   check=False, capture_output=True)
    if not wait_for(pulse_running, 10):
        raise RuntimeError("PulseAudio daemon did not start")


@contextmanager
def null_sink(prefix: str) -> Iterator[str]:
    """A PulseAudio null sink named uniquely; its monitor is ``<name>.monitor``."""
    ensure_pulse()
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    out = subprocess.run(["pactl", "load-module", "module-null-sink", f"sink_name={name}",
                          "rate=48000", "channels=1"], capture_output=True, text=True, check=True)
    module = out.stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["pactl", "unload-module", module], capture_output=True)


@contextmanager
def second_host() -> Iterator[tuple[str, str, str]]:
    """Another "computer" on a private network inside this machine (needs root and
    iproute2): a network namespace joined to this host by a veth pair, multicast routed as
    a LAN would. Yields (namespace, this host's address, the namespace's address); run a
    process there with ``ip netns exec <namespace> ...``. Removed on exit."""
    tag = uuid.uuid4().hex[:6]
    ns, a, b = f"gamgin{tag}", f"gva{tag}", f"gvb{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    here, there = f"10.213.{octet}.1", f"10.213.{octet}.2"
    from gamgin_common.linkemu import lan_commands

    cmds = [["ip", "netns", "add", ns], ["ip", "link", "add", a, "type", "veth", "peer", "name", b],
            *lan_commands(ns, a, b, here, there)]
    try:
        for c in cmds:
            subprocess.run(c, check=True, capture_output=True)
        yield ns, here, there
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", a], capture_output=True)


def set_link(ns: str, up: bool) -> None:
    """Take the veth link to a second_host() namespace down (its Wi-Fi gone: no goodbye
    reaches this host, the harder case for noticing) or bring it back up."""
    tag = ns.removeprefix("gamgin")
    subprocess.run(["ip", "link", "set", f"gva{tag}", "up" if up else "down"], check=True,
                   capture_output=True)


def node_status(diags: list, name: str, namespace: str = "/gamgin") -> dict[str, str]:
    """The latest DiagnosticStatus of `namespace`/`name` in a collected /diagnostics list, as
    a dict: level ("0" OK), message and its key/values; {} when the node said nothing yet."""
    for arr in reversed(list(diags)):
        for st in arr.status:
            if st.name == f"{namespace}/{name}":
                return {"level": str(st.level[0]), "message": st.message,
                        **{kv.key: kv.value for kv in st.values}}
    return {}


def play_to_sink(path: str | Path, sink: str) -> None:
    """Play a WAV into a sink (blocking until it is done), as a person speaking would."""
    subprocess.run(["paplay", f"--device={sink}", str(path)], check=True)


class Recorder:
    """Record a Pulse source (e.g. a speaker sink's monitor) in the background with parec."""

    def __init__(self, source: str, rate: int = 16000) -> None:
        self.source, self.rate = source, rate
        self._file = tempfile.NamedTemporaryFile(suffix=".raw", delete=False)
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Recorder:
        self.proc = subprocess.Popen(
            ["parec", f"--device={self.source}", "--format=s16le", f"--rate={self.rate}",
             "--channels=1", "--latency-msec=20"], stdout=self._file)
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> np.ndarray:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(5)
        self._file.flush()
        return self.samples()

    def samples(self) -> np.ndarray:
        data = Path(self._file.name).read_bytes()
        return np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0


def espeak_wav(text: str, path: str | Path, voice: str = "en-us", speed: int = 160) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    return Path(path)


def read_wav(path: str | Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        raw = w.readframes(w.getnframes())
        rate, ch, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
    if width != 2:
        raise ValueError("16-bit WAV expected")
    x = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return (x.reshape(-1, ch).mean(axis=1) if ch > 1 else x), rate


def loud_seconds(x: np.ndarray, rate: int = 16000, thresh: float = 0.02) -> float:
    """Seconds of 20 ms frames louder than `thresh` RMS: how long something was heard."""
    n = rate // 50
    frames = x[: len(x) // n * n].reshape(-1, n)
    return float(np.sum(np.sqrt(np.mean(frames**2, axis=1)) > thresh)) * 0.02


def best_correlation(needle: np.ndarray, haystack: np.ndarray) -> float:
    """Peak normalized cross-correlation of needle inside haystack (1.0 = identical shape)."""
    if len(haystack) < len(needle) or len(needle) == 0:
        return 0.0
    n = 1 << int(np.ceil(np.log2(len(haystack) + len(needle))))
    corr = np.fft.irfft(np.fft.rfft(haystack, n) * np.conj(np.fft.rfft(needle, n)), n)
    corr = corr[: len(haystack) - len(needle) + 1]
    win = np.convolve(np.square(haystack), np.ones(len(needle)), mode="valid")
    denom = np.sqrt(np.maximum(win, 1e-12) * float(np.sum(np.square(needle))))
    return float(np.max(corr / denom))


# ---------------------------------------------------------------------- ROS probe
class RosProbe:
    """An rclpy node in the test process, spun in a background thread: subscribe and
    collect, publish, call services. It has its own rclpy context on ``domain_id`` (default:
    $ROS_DOMAIN_ID), so closing it takes its publishers -- and their latched samples --
    off the graph: the next test module starts clean."""

    def __init__(self, name: str = "gamgin_test_probe", domain_id: int | None = None) -> None:
        import rclpy

        from gamgin_common.executor import SteadyExecutor

        self.context = rclpy.Context()
        domain = domain_id if domain_id is not None else int(os.environ.get("ROS_DOMAIN_ID", 0))
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node(name, context=self.context)
        # not rclpy 9's MultiThreadedExecutor: it can spin a core on a busy topic (see
        # executor.py) and starve the nodes under test of CPU
        self.executor = SteadyExecutor(num_threads=2, context=self.context)
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def collect(self, msg_type, topic: str, qos_profile) -> list:
        """Subscribe; every received message is appended (with arrival time in ``.arrivals``)."""
        out: _Collected = _Collected()

        def cb(msg) -> None:
            out.arrivals.append(time.monotonic())
            out.append(msg)

        out.subscription = self.node.create_subscription(msg_type, topic, cb, qos_profile)
        return out

    def publisher(self, msg_type, topic: str, qos_profile):
        return self.node.create_publisher(msg_type, topic, qos_profile)

    def wait_for_subscribers(self, pub, count: int = 1, timeout: float = 10.0) -> bool:
        return wait_for(lambda: pub.get_subscription_count() >= count, timeout)

    def wait_for_reader(self, pub, *nodes: str, timeout: float = 20.0) -> bool:
        """Until each of `nodes` (e.g. "turn", "llm") has a reader on pub's topic in the
        graph AND pub is matched with every reader there: a volatile message sent before
        that is lost to it, and ">= 1 subscriber" may be another node's reader."""
        topic = pub.topic_name

        def ready() -> bool:
            infos = self.node.get_subscriptions_info_by_topic(topic)
            have = {i.node_name for i in infos}
            return set(nodes) <= have and pub.get_subscription_count() >= len(infos)
        return wait_for(ready, timeout)

    def call(self, srv_type, name: str, request, timeout: float = 10.0):
        client = self.node.create_client(srv_type, name)
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                raise TimeoutError(f"service {name} not available after {timeout} s")
            future = client.call_async(request)
            if not wait_for(future.done, timeout):
                raise TimeoutError(f"service {name} did not answer in {timeout} s")
            return future.result()
        finally:
            self.node.destroy_client(client)

    def diagnostics_of(self, collected: list, node_fqn: str) -> list:
        """DiagnosticStatus entries for one node from a collected /diagnostics list."""
        return [s for arr in list(collected) for s in arr.status if s.name == node_fqn]

    def close(self) -> None:
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


class _Collected(list):
    def __init__(self) -> None:
        super().__init__()
        self.arrivals: list[float] = []
        self.subscription = None
