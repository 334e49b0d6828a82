"""The encrypted link of a split graph (`gamgin pair`, `gamgin up --role ... --peer ...`).

The robot runs on this host: the real devices node and a microphone stand-in that
publishes /gamgin/audio/mic, each a process with the robot's link profile (TLS over
TCP, one listening port each, given by gamgin.pair.SlotPicker as `gamgin up` does). The
brain runs in a network namespace with a certificate from the pet's CA; a third
namespace holds the intruders: no TLS at all, TLS without a certificate, and a
certificate from another CA (the last two trusting any robot). They neither receive the
audio nor switch a device, while a process there with the brain's certificate does get
the audio (the path works: the test can fail). A raw capture of the brain's wire shows
the audio never crosses in clear.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from gamgin import pair
from gamgin_common import testing

pytestmark = pytest.mark.integration
needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="needs root and iproute2")

MARKER = b"GAMGIN-CLEAR-AUDIO!"  # in every mic chunk: found on the wire = not encrypted
LIGHT = "living_room_light"

# One side of the link: publishes the microphone (robot), or listens to it and tries the
# devices (brain, intruders). Prints what it got as one JSON line when done or stopped.
SIDE = textwrap.dedent("""
    import json, sys, time, rclpy
    from rclpy.executors import ExternalShutdownException
    from gamgin_common import qos
    from gamgin_interfaces.msg import AudioChunk, Transcript
    from gamgin_interfaces.srv import SetPower
    cfg = json.loads(sys.argv[1])
    rclpy.init()
    node = rclpy.create_node(cfg["name"])
    out = {"mic": 0, "service": None}
    node.create_subscription(AudioChunk, "/gamgin/audio/mic",
                             lambda m: out.__setitem__("mic", out["mic"] + 1), qos.MIC_AUDIO)
    mic = node.create_publisher(AudioChunk, "/gamgin/audio/mic", qos.MIC_AUDIO) \\
        if cfg.get("talk") else None
    cmd = node.create_publisher(Transcript, "/gamgin/devices/command", qos.EVENTS) \\
        if cfg.get("command") else None
    power = node.create_client(SetPower, "/gamgin/devices/set_power") \\
        if "power" in cfg else None
    data = (sys.argv[2].encode() * 40)[:640]  # 20 ms of 16 kHz s16le
    future, seq, t_next, end = None, 0, time.monotonic(), time.monotonic() + cfg["seconds"]
    try:
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.005)
            if time.monotonic() < t_next:
                continue
            t_next += 0.02
            if mic:
                mic.publish(AudioChunk(turn_id=1, seq=seq, sample_rate=16000, channels=1,
                                       encoding="s16le", data=data))
            if cmd and seq % 25 == 0:
                cmd.publish(Transcript(turn_id=90 + seq, text=cfg["command"], language="zh",
                                       is_final=True, source="typed"))
            seq += 1
            if power and future is None and power.service_is_ready():
                future = power.call_async(SetPower.Request(device_id=cfg["light"],
                                                           on=cfg["power"]))
            if future is not None and future.done() and out["service"] is None:
                out["service"] = future.result().success
            if cfg.get("until_done") and out["service"] is not None \
                    and out["mic"] >= cfg.get("min_mic", 10):
                break
            if out["mic"] >= cfg.get("until_mic", 1e9):
                break
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    print(json.dumps(out), flush=True)
    node.destroy_node()
    rclpy.try_shutdown()
""")


@contextmanager
def hosts(n: int) -> Iterator[list[tuple[str, str, str]]]:
    """n second_host() namespaces on distinct subnets (each picks one of 200 at random)."""
    with ExitStack() as stack:
        got: list[tuple[str, str, str]] = []
        while len(got) < n:
            host = stack.enter_context(testing.second_host())
            if host[1] not in {h[1] for h in got}:
                got.append(host)
        yield got


class Sniffer:
    """Every byte crossing a veth interface (AF_PACKET, root), searched for MARKER."""

    def __init__(self, ifname: str) -> None:
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind((ifname, 0))
        self.sock.settimeout(0.2)
        self.bytes, self.clear = 0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:  # the namespace (and its veth) is gone
                return
            self.bytes += len(frame)
            self.clear += frame.count(MARKER)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def side(env: dict, name: str, seconds: float, ns: str | None = None,
         **cfg: object) -> subprocess.Popen:
    cmd = [sys.executable, "-c", SIDE, json.dumps({"name": name, "seconds": seconds,
                                                   "light": LIGHT, **cfg}), MARKER.decode()]
    return subprocess.Popen(["ip", "netns", "exec", ns, *cmd] if ns else cmd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def result(proc: subprocess.Popen, timeout: float) -> dict:
    try:
        out = proc.communicate(timeout=timeout)[0]
    except subprocess.TimeoutExpired:
        proc.kill()
        out = proc.communicate()[0]
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    assert lines, out[-2000:]
    return json.loads(lines[-1])


def intruder_profile(hc: pair.HostCert, robot: str, cert: bool, tls: bool = True) -> str:
    """What a host without the pet's certificate would try: our own profile, trusting any
    robot, with another CA's certificate or none."""
    xml = pair.link_profile(hc, None, [robot], tls=tls)
    xml = xml.replace("<verify>VERIFY_PEER</verify><verify>VERIFY_FAIL_IF_NO_PEER_CERT</verify>",
                      "<verify>VERIFY_NONE</verify>")
    if not cert:
        xml = "\n".join(ln for ln in xml.splitlines()
                        if "<private_key_file>" not in ln and "<cert_chain_file>" not in ln)
    return xml


@pytest.fixture
def paired(tmp_path: Path) -> dict[str, pair.HostCert]:
    pair.init(tmp_path / "robot")
    pair.install(pair.issue("brain", tmp_path / "bundle", tmp_path / "robot"), tmp_path / "brain")
    pair.init(tmp_path / "other", host="intruder")  # another pet's CA
    certs = {k: pair.host_cert(tmp_path / k) for k in ("robot", "brain", "other")}
    assert all(certs.values())
    return certs  # type: ignore[return-value]


def test_pair_files_are_private_and_checked(paired, tmp_path):
    assert (tmp_path / "robot" / "ca" / "ca.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "robot" / "ca").stat().st_mode & 0o777 == 0o700
    assert paired["brain"].key.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "brain" / "ca").exists()  # the CA's key stays on the robot
    assert paired["brain"].name == "brain"
    with pytest.raises(pair.PairError):  # a certificate of another pet is refused
        pair.verify(pair.HostCert(paired["robot"].ca, paired["other"].cert,
                                  paired["other"].key))
    with pytest.raises(pair.PairError):
        pair.init(tmp_path / "robot")  # never replaced by accident


@needs_root
def test_brain_gets_the_audio_over_tls_and_intruders_get_nothing(paired, node_env, tmp_path):
    state = tmp_path / "devices.json"  # written by the devices node at each change
    with hosts(2) as [(brain_ns, robot_ip, _), (third_ns, robot_ip3, _)]:
        robot = pair.write_link("robot", [], paired["robot"], tmp_path / "link-robot")
        brain = pair.write_link("brain", [robot_ip], paired["brain"], tmp_path / "link-brain")
        slots = pair.SlotPicker(robot)
        devices = testing.NodeProcess(
            "gamgin_devices", "devices_node", "devices", slots(node_env),
            params={"state_file": str(state)}, log_dir=str(tmp_path))
        procs: list[subprocess.Popen] = []
        sniffer = Sniffer(f"gva{brain_ns.removeprefix('gamgin')}")
        try:
            devices.start()
            # the robot's microphone: a second robot process, on the next link port
            procs.append(side(slots(node_env), "mic_stand_in", 60, talk=True))
            assert testing.wait_for(lambda: "active: ready" in devices.log(), 30), devices.log()
            assert not state.exists()  # all off, nothing changed yet

            got = result(side(brain.env(node_env), "brain", 30, brain_ns, power=True,
                              until_done=True), 45)
            if got["mic"] < 10:
                # CI-57: the service answered over the link but the second robot process's
                # audio never came in 30 s (1 run in ~8): the brain dials each robot port,
                # and a refused first connect is retried with growing delays. The link must
                # come up; a second brain run (the box restarted) shows whether it does
                print(f"brain run 1 got {got}; the brain starts again", flush=True)
                got = result(side(brain.env(node_env), "brain", 45, brain_ns, power=True,
                                  until_done=True), 60)
            assert got["mic"] >= 10 and got["service"] is True, got
            assert _light(state) is True
            changed = state.stat().st_mtime_ns
            assert sniffer.bytes > 10_000 and sniffer.clear == 0, vars(sniffer)

            env3 = {k: v for k, v in brain.env(node_env).items() if k != "OPENSSL_CONF"}
            intruders = {}
            for name, kw in {"no_tls": {"cert": False, "tls": False},
                             "no_certificate": {"cert": False},
                             "other_ca": {"cert": True}}.items():
                profile = tmp_path / f"{name}.xml"
                profile.write_text(intruder_profile(paired["other"], robot_ip3, **kw))
                intruders[name] = side(dict(env3, FASTDDS_DEFAULT_PROFILES_FILE=str(profile)),
                                       name, 12, third_ns, power=False, command="把客厅的灯关掉")
            control_link = pair.write_link("brain", [robot_ip3], paired["brain"],
                                           tmp_path / "link-control")
            control = side(control_link.env(node_env), "control", 30, third_ns, until_mic=10)
            results = {name: result(p, 30) for name, p in intruders.items()}
            assert result(control, 40)["mic"] >= 10, "control: the third host reaches the robot"
            for name, got in results.items():
                assert got == {"mic": 0, "service": None}, (name, got)
            # neither the service nor a command reached the devices: not even a refusal
            assert _light(state) is True and state.stat().st_mtime_ns == changed
        finally:
            sniffer.stop()
            for p in procs:
                p.send_signal(signal.SIGINT)
                try:
                    p.communicate(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.communicate()
            assert devices.stop() == 0, devices.log()


def _light(state: Path) -> bool:
    return json.loads(state.read_text())["devices"][LIGHT]["on"]


@needs_root
def test_gamgin_up_on_a_paired_robot_links_over_tls_only(node_env, tmp_path):
    """`gamgin up --role robot --peer ...` on a paired host: secure without being asked,
    its process on the first link port; the brain's certificate switches a light, a
    certificate of another pet does not."""
    from gamgin.bench_e2e import GraphRun
    from gamgin.graph import default_config_dir

    data = tmp_path / "data"
    pair.init(data / "pair")
    bundle = pair.issue("brain", tmp_path / "bundle", data / "pair")
    brain_hc = pair.install(bundle, tmp_path / "brain")
    pair.init(tmp_path / "other")
    env = dict(node_env, GAMGIN_DATA=str(data))
    with hosts(1) as [(ns, robot_ip, brain_ip)]:
        up = GraphRun(default_config_dir(), env, tmp_path / "up.log", exclude=[],
                      extra=["--role", "robot", "--only", "devices", "--peer", brain_ip,
                             "--no-standby"])
        try:
            log = lambda: (tmp_path / "up.log").read_text(errors="replace")  # noqa: E731
            assert testing.wait_for(lambda: "active: ready" in log(), 40), log()
            assert f"link TLS (listening on TCP {pair.LINK_PORT}.." in log(), log()
            other = pair.write_link("brain", [robot_ip], pair.host_cert(tmp_path / "other"),
                                    tmp_path / "link-other")
            assert result(side(other.env(env), "other_pet", 8, ns, power=True), 25) == \
                {"mic": 0, "service": None}
            brain = pair.write_link("brain", [robot_ip], brain_hc, tmp_path / "link-brain")
            got = result(side(brain.env(env), "brain", 25, ns, power=True, until_done=True,
                              min_mic=0), 40)
            assert got["service"] is True, (got, log()[-3000:])
            assert _light(data / "devices_state.json") is True
        finally:
            up.stop()
        assert up.proc.returncode == 0, log()


def test_launch_file_links_like_gamgin_up(monkeypatch, tmp_path):
    """bringup.launch.py peer:=: TLS per process once paired (the robot's n-th process on
    port LINK_PORT + n), unicast UDP when not paired or secure:=false."""
    spec = importlib.util.spec_from_file_location(
        "launch_file_test", Path(__file__).with_name("test_launch_file.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    launch = module.launch  # the launch file run with stand-ins for launch/launch_ros
    monkeypatch.setenv("GAMGIN_DATA", str(tmp_path))
    _, nodes = launch(monkeypatch, role="robot", peer="10.0.0.2")
    assert nodes and all(n.kwargs["additional_env"] == {"ROS_STATIC_PEERS": "10.0.0.2"}
                         for n in nodes)
    pair.init(tmp_path / "pair")
    for role, first in (("robot", "robot-slot0.xml"), ("brain", "brain.xml")):
        _, nodes = launch(monkeypatch, role=role, peer="10.0.0.2")
        envs = [n.kwargs["additional_env"] for n in nodes]
        assert Path(envs[0]["FASTDDS_DEFAULT_PROFILES_FILE"]).name == first, envs
        assert len({e["FASTDDS_DEFAULT_PROFILES_FILE"] for e in envs}) == (
            len(envs) if role == "robot" else 1)
        assert all(e["ROS_STATIC_PEERS"] == "" and e["OPENSSL_CONF"] for e in envs)
    _, nodes = launch(monkeypatch, role="brain", peer="10.0.0.2", secure="false")
    assert all("OPENSSL_CONF" not in n.kwargs["additional_env"] for n in nodes)
