"""The user-space Wi-Fi link (gamgin_common.linkemu): a UDP echo in the namespace answers
through it -- unicast (after ARP) and multicast, as on a LAN segment -- with the configured
delay, loses about the configured share of frames, and answers nothing while cut."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from gamgin_common import linkemu

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"),
    reason="needs root, iproute2 and /dev/net/tun")

GROUP, PORT = "239.255.42.42", 9999
ECHO = textwrap.dedent(f"""
    import socket, struct, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("0.0.0.0", {PORT}))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton("{GROUP}"), socket.inet_aton(sys.argv[1])))
    print("ready", flush=True)
    while True:
        data, addr = s.recvfrom(2048)
        s.sendto(data, addr)
""")


def rtts(sock: socket.socket, dest: tuple[str, int], n: int, timeout: float = 0.5) -> list:
    sock.settimeout(timeout)
    out: list[float | None] = []
    for i in range(n):
        payload = struct.pack("!I", i)
        t0 = time.monotonic()
        sock.sendto(payload, dest)
        got = None
        try:
            while got is None:
                data, _ = sock.recvfrom(2048)
                if data == payload:
                    got = (time.monotonic() - t0) * 1000
        except TimeoutError:
            pass
        out.append(got)
    return out


def test_delay_loss_multicast_and_cut_through_the_emulated_link():
    with linkemu.wifi_host(delay_ms=20, jitter_ms=0, loss=0.0, seed=1) as link:
        echo = subprocess.Popen(["ip", "netns", "exec", link.ns, sys.executable, "-c", ECHO,
                                 link.there], stdout=subprocess.PIPE, text=True)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(link.here))
        try:
            assert echo.stdout.readline().strip() == "ready"
            # 20 ms each way: a round trip of 40 ms and a little (a busy machine adds some)
            r = rtts(sock, (link.there, PORT), 20)
            got = [x for x in r if x is not None]
            assert len(got) == 20, r
            assert 39.0 <= float(np.median(got)) <= 60.0, got
            # multicast crosses too (a layer-2 segment, not a router)
            m = [x for x in rtts(sock, (GROUP, PORT), 5) if x is not None]
            assert len(m) == 5 and min(m) >= 39.0, m

            # 20 % loss each way: ~20 % of the frames dropped in each direction
            link.configure(1, 0, 0.2)
            before = link.stats()
            r = rtts(sock, (link.there, PORT), 400, timeout=0.05)
            d = linkemu.delta(link.stats(), before)["to_ns"]
            assert 0.14 <= d["lost"] / d["frames"] <= 0.26, d
            assert d["peer_frames"] >= 0.95 * d["frames"], d  # host -> namespace, unicast
            kinds = linkemu.delta(link.stats(), before)["bytes_by_kind"]["to_ns"]
            assert kinds[f"udp:{PORT}"] >= 0.95 * d["bytes"], kinds
            assert 0.5 <= sum(x is not None for x in r) / len(r) <= 0.78, d

            # cut: nothing crosses, counted as cut; restored: answers again
            link.configure(1, 0, 0.0)
            link.cut()
            assert all(x is None for x in rtts(sock, (link.there, PORT), 3, timeout=0.2))
            assert link.stats()["to_ns"]["cut"] >= 3
            link.restore()
            assert all(x is not None for x in rtts(sock, (link.there, PORT), 3))
        finally:
            sock.close()
            echo.kill()
            echo.wait()
            echo.stdout.close()
        ns, host_if = link.ns, link.host_if
    # nothing left behind
    assert ns not in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                    text=True).stdout
    assert subprocess.run(["ip", "link", "show", host_if], capture_output=True).returncode != 0
