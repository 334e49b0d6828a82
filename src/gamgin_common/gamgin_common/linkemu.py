"""A home Wi-Fi link between this host and a network namespace, emulated in user space.

This machine's kernel has no ``sch_netem`` (``tc qdisc ... netem``: "Specified qdisc kind
is unknown"), so the link is two TAP devices -- one on this host, one moved into the
namespace -- and a forwarder process copying Ethernet frames between them: a layer-2
segment (ARP, multicast and all), with a one-way delay + uniform jitter per frame, frames
kept in order (Wi-Fi's link layer delivers in order: a late frame holds back the next
ones, as netem with a pfifo would not), random loss, and byte/frame counters per
direction. ``cut()`` drops every frame (the box switched off or out of range: no goodbye
crosses), ``restore()`` forwards again.

    with linkemu.wifi_host(delay_ms=5, jitter_ms=3, loss=0.01) as link:
        subprocess.run(["ip", "netns", "exec", link.ns, ...])  # the other host
        link.stats()  # {"to_ns": {"frames":..., "bytes":..., "lost":...}, "from_ns": ...}

Needs root and iproute2. The forwarder is a child process (``python -m
gamgin_common.linkemu``), not a thread: the GIL of a busy test process would add delay.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import select
import socket
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

TUNSETIFF = 0x400454CA
IFF_TAP, IFF_NO_PI = 0x0002, 0x1000
DIRECTIONS = ("to_ns", "from_ns")  # this host -> namespace, namespace -> this host


def open_tap(name: str) -> int:
    """A TAP device (Ethernet frames, no packet info header) and its non-blocking fd: the
    device exists while the fd is open."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


class EmulatedLink:
    """The running link: namespace name, both addresses, control of the forwarder."""

    def __init__(self, ns: str, here: str, there: str, host_if: str,
                 proc: subprocess.Popen) -> None:
        self.ns, self.here, self.there, self.host_if = ns, here, there, host_if
        self._proc = proc
        self._lock = threading.Lock()

    def _ask(self, command: str) -> dict:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        with self._lock:
            self._proc.stdin.write(command + "\n")
            self._proc.stdin.flush()
            line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError("link emulator exited")
        return json.loads(line)

    def stats(self) -> dict:
        """Counters since start, per direction: frames/bytes received from the sending
        side, of which peer_frames/peer_bytes between the two link addresses, delivered,
        lost (random loss), cut (dropped while cut); bytes are whole Ethernet frames
        (14-byte header, no FCS); bytes_by_kind: per direction, per UDP destination port
        ("udp:7411"), "tcp", "icmp", "arp", "other"."""
        return self._ask("stats")

    def cut(self) -> dict:
        """Stop forwarding (frames in flight are dropped too)."""
        return self._ask("cut")

    def restore(self) -> dict:
        return self._ask("restore")

    def configure(self, delay_ms: float, jitter_ms: float, loss: float) -> dict:
        return self._ask(f"set {delay_ms} {jitter_ms} {loss}")


def delta(after: dict, before: dict) -> dict:
    """Counters of stats() between two readings (bytes_by_kind: per direction)."""
    out: dict = {d: {k: after[d][k] - before[d][k] for k in after[d]} for d in DIRECTIONS}
    out["bytes_by_kind"] = {d: {k: v - before["bytes_by_kind"][d].get(k, 0)
                                for k, v in after["bytes_by_kind"][d].items()
                                if v - before["bytes_by_kind"][d].get(k, 0)}
                            for d in DIRECTIONS}
    return out


def lan_commands(ns: str, a: str, b: str, here: str, there: str) -> list[list[str]]:
    """The `ip` commands that move interface ``b`` into namespace ``ns`` and make ``a``-``b``
    a LAN between ``here`` (this host) and ``there``: addresses, multicast routed (DDS
    discovery), and a default route back, since a DDS participant here announces every
    address of this host (other tests' interfaces too) and a peer that picked an unroutable
    one never reached it (the robot did not hear the brain, 3 runs in 4)."""
    return [
        ["ip", "link", "set", b, "netns", ns],
        ["ip", "addr", "add", f"{here}/24", "dev", a],
        ["ip", "link", "set", a, "up", "multicast", "on"],
        ["ip", "netns", "exec", ns, "ip", "addr", "add", f"{there}/24", "dev", b],
        ["ip", "netns", "exec", ns, "ip", "link", "set", b, "up", "multicast", "on"],
        ["ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up"],
        ["ip", "netns", "exec", ns, "ip", "route", "add", "224.0.0.0/4", "dev", b],
        ["ip", "netns", "exec", ns, "ip", "route", "add", "default", "via", here],
    ]


@contextmanager
def wifi_host(delay_ms: float = 5.0, jitter_ms: float = 3.0, loss: float = 0.01,
              seed: int | None = None) -> Iterator[EmulatedLink]:
    """Another "computer" (a network namespace, as testing.second_host makes) reached
    through an emulated Wi-Fi link. Yields an EmulatedLink; everything is removed on exit."""
    tag = uuid.uuid4().hex[:6]
    ns, a, b = f"gamgin{tag}", f"gwa{tag}", f"gwb{tag}"
    octet = int(tag[:2], 16) % 200 + 20
    here, there = f"10.214.{octet}.1", f"10.214.{octet}.2"
    fds: list[int] = []
    proc: subprocess.Popen | None = None
    try:
        fds = [open_tap(a), open_tap(b)]
        for c in [["ip", "netns", "add", ns], *lan_commands(ns, a, b, here, there)]:
            subprocess.run(c, check=True, capture_output=True)
        args = [sys.executable, "-m", "gamgin_common.linkemu", "--fds", f"{fds[0]},{fds[1]}",
                "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms), "--loss", str(loss),
                "--peers", f"{here},{there}"]
        if seed is not None:
            args += ["--seed", str(seed)]
        proc = subprocess.Popen(args, pass_fds=fds, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, bufsize=1)
        link = EmulatedLink(ns, here, there, a, proc)
        link.stats()  # answers once it runs
        yield link
    finally:
        if proc is not None:
            if proc.poll() is None:
                proc.stdin.close()  # EOF: the forwarder exits
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            proc.stdout.close()
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        for fd in fds:  # closing the last fd of a TAP device deletes it
            os.close(fd)


# ---------------------------------------------------------------------- the forwarder
def _counters() -> dict[str, int]:
    return {"frames": 0, "bytes": 0, "peer_frames": 0, "peer_bytes": 0, "delivered": 0,
            "delivered_bytes": 0, "lost": 0, "cut": 0, "write_errors": 0}


def _ipv4_pair(frame: bytes) -> bytes | None:
    """Source + destination address of an IPv4 frame (8 bytes), else None."""
    if len(frame) >= 34 and frame[12:14] == b"\x08\x00":
        return frame[26:34]
    return None


def _kind(frame: bytes, frag_port: dict[bytes, str]) -> str:
    """What a frame carries, for the per-kind byte counts: "udp:PORT" (destination; the
    later fragments of a datagram count with its first), "tcp", "icmp", "arp", "other"."""
    if frame[12:14] == b"\x08\x06":
        return "arp"
    if frame[12:14] != b"\x08\x00" or len(frame) < 34:
        return "other"
    proto, ihl = frame[23], (frame[14] & 0x0F) * 4
    flags_off = struct.unpack("!H", frame[20:22])[0]
    key = frame[18:20] + frame[26:34]  # IP id + addresses: one datagram's fragments
    if proto == 17:
        if flags_off & 0x1FFF:  # a later fragment
            kind = frag_port.get(key, "udp:?")
            if not flags_off & 0x2000:
                frag_port.pop(key, None)
            return kind
        kind = f"udp:{struct.unpack('!H', frame[14 + ihl + 2:14 + ihl + 4])[0]}"
        if flags_off & 0x2000:  # more fragments follow
            if len(frag_port) > 1000:
                frag_port.clear()
            frag_port[key] = kind
        return kind
    return {6: "tcp", 1: "icmp"}.get(proto, "other")


def forward(fd_a: int, fd_b: int, delay_ms: float, jitter_ms: float, loss: float,
            seed: int | None, peers: tuple[str, str] | None = None, control=sys.stdin,
            reply=sys.stdout) -> None:
    """Copy frames a <-> b until `control` reaches EOF; commands on it, one a line:
    stats | cut | restore | set DELAY_MS JITTER_MS LOSS, each answered by a JSON line.
    ``peers`` (a's address, b's address): IPv4 frames between exactly these two are also
    counted as peer_frames/peer_bytes -- the rest is ARP, multicast, and datagrams to the
    other addresses a multi-homed host announces (routed here, they cross the link too)."""
    rng = random.Random(seed)
    params = {"delay_ms": delay_ms, "jitter_ms": jitter_ms, "loss": loss}
    other = {fd_a: fd_b, fd_b: fd_a}
    name = {fd_a: "to_ns", fd_b: "from_ns"}
    stats = {d: _counters() for d in DIRECTIONS}
    queue: dict[int, deque[tuple[float, bytes]]] = {fd_a: deque(), fd_b: deque()}
    last_due = {fd_a: 0.0, fd_b: 0.0}
    state = {"cut": False}
    by_kind: dict[str, dict[str, int]] = {d: {} for d in DIRECTIONS}
    frag_port: dict[bytes, str] = {}
    pair_of: dict[int, bytes | None] = {fd_a: None, fd_b: None}
    if peers:
        x, y = (socket.inet_aton(p) for p in peers)
        pair_of = {fd_a: x + y, fd_b: y + x}
    ctl = control.fileno()
    os.set_blocking(ctl, True)

    def answer() -> None:
        reply.write(json.dumps({**stats, **params, "cut_now": state["cut"],
                                "bytes_by_kind": by_kind}) + "\n")
        reply.flush()

    def command(line: str) -> None:
        words = line.split()
        if words and words[0] == "cut":
            state["cut"] = True
            for fd, q in queue.items():  # in the air when the link went: cut too
                stats[name[fd]]["cut"] += len(q)
                q.clear()
        elif words and words[0] == "restore":
            state["cut"] = False
        elif words and words[0] == "set" and len(words) == 4:
            params.update(delay_ms=float(words[1]), jitter_ms=float(words[2]),
                          loss=float(words[3]))
        answer()

    buf = b""
    while True:
        now = time.monotonic()
        due = [q[0][0] for q in queue.values() if q]
        timeout = max(0.0, min(due) - now) if due else 1.0
        ready, _, _ = select.select([fd_a, fd_b, ctl], [], [], timeout)
        now = time.monotonic()
        for fd in ready:
            if fd == ctl:
                chunk = os.read(ctl, 4096)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    command(line.decode())
                continue
            st = stats[name[fd]]
            while True:
                try:
                    frame = os.read(fd, 65536)
                except BlockingIOError:
                    break
                st["frames"] += 1
                st["bytes"] += len(frame)
                kinds = by_kind[name[fd]]
                kind = _kind(frame, frag_port)
                kinds[kind] = kinds.get(kind, 0) + len(frame)
                if pair_of[fd] is not None and _ipv4_pair(frame) == pair_of[fd]:
                    st["peer_frames"] += 1
                    st["peer_bytes"] += len(frame)
                if state["cut"]:
                    st["cut"] += 1
                elif rng.random() < params["loss"]:
                    st["lost"] += 1
                else:
                    d = params["delay_ms"] + rng.uniform(-params["jitter_ms"],
                                                         params["jitter_ms"])
                    # in order: never before the frame ahead of it
                    at = max(last_due[fd], now + max(0.0, d) / 1000)
                    last_due[fd] = at
                    queue[fd].append((at, frame))
        now = time.monotonic()
        for fd, q in queue.items():
            st = stats[name[fd]]
            while q and q[0][0] <= now:
                _, frame = q.popleft()
                try:
                    os.write(other[fd], frame)
                    st["delivered"] += 1
                    st["delivered_bytes"] += len(frame)
                except OSError:  # the receiving side's queue full or going down
                    st["write_errors"] += 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="the forwarder of gamgin_common.linkemu")
    ap.add_argument("--fds", required=True, help="the two TAP fds: this host's, the namespace's")
    ap.add_argument("--delay-ms", type=float, default=5.0)
    ap.add_argument("--jitter-ms", type=float, default=3.0)
    ap.add_argument("--loss", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--peers", default=None, help="HERE,THERE: count frames between them")
    args = ap.parse_args(argv)
    a, b = (int(x) for x in args.fds.split(","))
    try:  # the wire must not wait for the CPU behind the nodes it carries (root: allowed)
        os.nice(-10)
    except OSError:
        pass
    peers = tuple(args.peers.split(",")) if args.peers else None
    forward(a, b, args.delay_ms, args.jitter_ms, args.loss, args.seed, peers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
