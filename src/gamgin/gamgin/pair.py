"""`gamgin pair`: the pet's own certificate authority, and the encrypted link between its
two hosts (`gamgin up --role robot|brain --peer ADDR`, secure once paired).

The Fast DDS in the PyPI ROS 2 wheels is built without DDS Security, but its TCPv4
transport speaks TLS (the wheel bundles OpenSSL 1.1.1). So a paired graph runs every node
with an XML profile that has no network transport but TLS over TCP:

- SHM and UDP on the loopback interface only, for the processes of one host (the UDP one
  also lets a tool without the profile, `gamgin status` or `ros2 topic`, see them);
- TCPv4 + TLS 1.2+ between the hosts, both sides presenting a certificate signed by the
  pet's CA. The robot listens (one port per process, LINK_PORT + slot), the brain dials.

Fast DDS applies the profile's `verify_mode` only to the connections it opens, never to
the ones it accepts (its TLS acceptor never sets a verify mode on its SSL context, so a
client without a certificate got the microphone's audio). OPENSSL_CONF with
`VerifyMode = Peer,Require` fixes that for every SSL context of the process: the robot
then refuses a handshake from any host without the pet's certificate.

Certificates are made with the `openssl` command (no Python crypto package in the
environment); EC P-256 keys, 0600 in 0700 folders under $GAMGIN_DATA/pair:
  ca/ca.key, ca/ca.crt      the pet's CA (stays on the robot)
  host/{ca,host}.crt, host.key   this host's identity (`pair init` or `pair install`)
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from gamgin_common.paths import data_dir


def escape(text: str) -> str:
    """Text for an XML element (xml.sax.saxutils.escape pulls in urllib, http and ssl:
    +8 MB in `gamgin up`, which imports this module)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


LINK_PORT = 7720  # the robot's first listening port; slot i listens on LINK_PORT + i
LINK_SLOTS = 4  # robot processes that can hold a link (graph.yaml has one: `base`)
CA_DAYS = 3650
HOST_DAYS = 825

# Every SSL context of a linked process (Fast DDS's, but also Python's ssl module, which
# reads the same variable) requires and verifies the peer's certificate.
OPENSSL_CNF = """\
# written by gamgin pair: applied to every SSL context of the process (see gamgin/pair.py)
openssl_conf = gamgin_init
[gamgin_init]
ssl_conf = gamgin_ssl
[gamgin_ssl]
system_default = gamgin_tls
[gamgin_tls]
MinProtocol = TLSv1.2
VerifyMode = Peer,Require
"""


class PairError(RuntimeError):
    """Pairing material missing or invalid; the message says what to run."""


@dataclass(frozen=True)
class HostCert:
    """This host's identity on the pet's link."""
    ca: Path  # the pet's CA certificate: the only issuer accepted from the other host
    cert: Path
    key: Path

    @property
    def name(self) -> str:
        out = _openssl("x509", "-in", str(self.cert), "-noout", "-subject")
        return out.strip().rsplit("=", 1)[-1].strip()


def pair_root(root: Path | None = None) -> Path:
    return Path(root) if root else data_dir() / "pair"


def host_cert(root: Path | None = None) -> HostCert | None:
    """This host's pairing material, or None when the host is not paired."""
    d = pair_root(root) / "host"
    hc = HostCert(d / "ca.crt", d / "host.crt", d / "host.key")
    return hc if all(p.is_file() for p in (hc.ca, hc.cert, hc.key)) else None


def _openssl(*args: str, stdin: str | None = None) -> str:
    exe = shutil.which("openssl")
    if exe is None:
        raise PairError("the openssl command is needed (apt install openssl)")
    res = subprocess.run([exe, *args], capture_output=True, text=True, input=stdin)
    if res.returncode != 0:
        raise PairError(f"openssl {args[0]} failed: {res.stderr.strip()}")
    return res.stdout


def _private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o700)
    return path


def _new_key(path: Path) -> None:
    # umask 077 while openssl writes: the key is never readable by others, even briefly
    old = os.umask(0o077)
    try:
        _openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-out", str(path))
    finally:
        os.umask(old)
    path.chmod(0o600)


def init(root: Path | None = None, host: str = "robot", force: bool = False) -> HostCert:
    """Make the pet's CA and this (the robot's) host certificate."""
    ca = _private_dir(pair_root(root) / "ca")
    if (ca / "ca.key").exists() and not force:
        raise PairError(f"{ca} already holds the pet's CA (--force makes a new one: every "
                        "paired host must then be issued a new certificate)")
    _new_key(ca / "ca.key")
    _openssl("req", "-x509", "-new", "-key", str(ca / "ca.key"), "-sha256",
             "-days", str(CA_DAYS), "-subj", "/CN=gamgin pet CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", str(ca / "ca.crt"))
    return install(issue(host, pair_root(root) / "host-bundle", root), root, keep=False)


def issue(name: str, out: Path, root: Path | None = None) -> Path:
    """A certificate and key for host `name`, signed by the pet's CA, as a bundle folder
    (ca.crt, host.crt, host.key) to copy to that host and `gamgin pair install` there."""
    ca = pair_root(root) / "ca"
    if not (ca / "ca.key").is_file():
        raise PairError(f"no CA in {ca}: run `gamgin pair init` on the robot first")
    out = _private_dir(Path(out))
    _new_key(out / "host.key")
    csr = _openssl("req", "-new", "-key", str(out / "host.key"), "-subj", f"/CN={name}")
    ext = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
           "extendedKeyUsage=serverAuth,clientAuth\n")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "ext.cnf").write_text(ext)
        (Path(tmp) / "host.csr").write_text(csr)
        _openssl("x509", "-req", "-in", str(Path(tmp) / "host.csr"), "-CA", str(ca / "ca.crt"),
                 "-CAkey", str(ca / "ca.key"), "-CAcreateserial", "-CAserial",
                 str(ca / "ca.srl"), "-days", str(HOST_DAYS), "-sha256",
                 "-extfile", str(Path(tmp) / "ext.cnf"), "-out", str(out / "host.crt"))
    shutil.copyfile(ca / "ca.crt", out / "ca.crt")
    return out


def install(bundle: Path, root: Path | None = None, keep: bool = True) -> HostCert:
    """Make a bundle from `gamgin pair issue` this host's identity (checked first)."""
    bundle = Path(bundle)
    src = HostCert(bundle / "ca.crt", bundle / "host.crt", bundle / "host.key")
    for p in (src.ca, src.cert, src.key):
        if not p.is_file():
            raise PairError(f"{p} missing: a bundle from `gamgin pair issue` is needed")
    verify(src)
    dest = _private_dir(pair_root(root) / "host")
    for name in ("ca.crt", "host.crt", "host.key"):
        shutil.copyfile(bundle / name, dest / name)
        (dest / name).chmod(0o600 if name.endswith(".key") else 0o644)
    if not keep:
        shutil.rmtree(bundle)
    hc = host_cert(root)
    assert hc is not None
    return hc


def verify(hc: HostCert) -> None:
    """The certificate is signed by the CA and matches the key (raises PairError)."""
    _openssl("verify", "-CAfile", str(hc.ca), str(hc.cert))
    pub_cert = _openssl("x509", "-in", str(hc.cert), "-noout", "-pubkey")
    pub_key = _openssl("pkey", "-in", str(hc.key), "-pubout")
    if pub_cert.strip() != pub_key.strip():
        raise PairError(f"{hc.key} is not the key of {hc.cert}")


# ---------------------------------------------------------------------- the link profile
def link_profile(hc: HostCert, listen_port: int | None = None,
                 peers: list[str] | tuple[str, ...] = (), slots: int = LINK_SLOTS,
                 tls: bool = True, nodelay: bool = True) -> str:
    """The Fast DDS XML profile of one process. `listen_port`: the robot's slot (None: dial
    only); `peers`: the robot's addresses, reached on all its slots. tls=False is the same
    link in clear and nodelay=False lets TCP gather small writes (Nagle): both for
    `gamgin bench link` only."""
    listen = (f"<listening_ports><port>{listen_port}</port></listening_ports>"
              if listen_port is not None else "")
    tls_xml = f"""
        <tls>
          <private_key_file>{escape(str(hc.key))}</private_key_file>
          <cert_chain_file>{escape(str(hc.cert))}</cert_chain_file>
          <verify_file>{escape(str(hc.ca))}</verify_file>
          <!-- applied to the connections this process opens only, and only the first
               flag (see OPENSSL_CNF for the rest) -->
          <verify_mode><verify>VERIFY_PEER</verify><verify>VERIFY_FAIL_IF_NO_PEER_CERT</verify></verify_mode>
          <options>
            <option>DEFAULT_WORKAROUNDS</option><option>NO_COMPRESSION</option>
            <option>NO_SSLV2</option><option>NO_SSLV3</option>
            <option>NO_TLSV1</option><option>NO_TLSV1_1</option>
          </options>
        </tls>""" if tls else ""
    locators = "".join(
        f"<locator><tcpv4><address>{escape(p)}</address>"
        f"<physical_port>{LINK_PORT + i}</physical_port></tcpv4></locator>"
        for p in peers for i in range(slots))
    builtin = (f"<builtin><initialPeersList>{locators}</initialPeersList></builtin>"
               if locators else "")
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<!-- written by gamgin (gamgin/pair.py): the pet's hosts talk over TLS only -->
<dds xmlns="http://www.eprosima.com">
  <profiles>
    <transport_descriptors>
      <transport_descriptor>
        <transport_id>gamgin_link</transport_id>
        <type>TCPv4</type>
        {listen}
        <enable_tcp_nodelay>{str(nodelay).lower()}</enable_tcp_nodelay>{tls_xml}
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>gamgin_shm</transport_id>
        <type>SHM</type>
      </transport_descriptor>
      <transport_descriptor>
        <transport_id>gamgin_loopback</transport_id>
        <type>UDPv4</type>
        <interfaceWhiteList><address>127.0.0.1</address></interfaceWhiteList>
      </transport_descriptor>
    </transport_descriptors>
    <participant profile_name="gamgin_link" is_default_profile="true">
      <rtps>
        <userTransports>
          <transport_id>gamgin_link</transport_id>
          <transport_id>gamgin_shm</transport_id>
          <transport_id>gamgin_loopback</transport_id>
        </userTransports>
        <useBuiltinTransports>false</useBuiltinTransports>
        {builtin}
      </rtps>
    </participant>
  </profiles>
</dds>
"""


@dataclass
class Link:
    """The files of one host's link: a profile per robot slot (or the brain's one) and
    the OpenSSL config; `env(profile)` is what a node process needs."""
    folder: Path
    profiles: list[Path]
    openssl_conf: Path
    listens: bool

    def env(self, base: dict[str, str], profile: Path | None = None) -> dict[str, str]:
        env = dict(base)
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(profile or self.profiles[0])
        env.pop("FASTRTPS_DEFAULT_PROFILES_FILE", None)
        env["OPENSSL_CONF"] = str(self.openssl_conf)
        # LOCALHOST would make rmw_fastrtps add a UDP unicast locator that replaces the
        # profile's; the profile itself is the boundary (UDP on loopback, TLS elsewhere).
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SUBNET"
        env["ROS_STATIC_PEERS"] = ""  # no UDP peers: the link is the only way out
        # the audio readers of a graph spanning hosts stay best effort (gamgin_common.qos
        # keys that on ROS_STATIC_PEERS, emptied here)
        env.setdefault("GAMGIN_AUDIO_QOS", "best_effort")
        return env


def write_link(role: str, peers: list[str], hc: HostCert, folder: Path,
               slots: int = LINK_SLOTS, tls: bool = True, nodelay: bool = True) -> Link:
    """The robot listens on LINK_PORT..+slots (a profile each); the brain dials them."""
    if role not in ("robot", "brain"):
        raise PairError("an encrypted link needs --role robot or --role brain")
    folder = _private_dir(Path(folder))
    conf = folder / "openssl.cnf"
    conf.write_text(OPENSSL_CNF)
    if role == "robot":
        profiles = []
        for i in range(slots):
            p = folder / f"robot-slot{i}.xml"
            p.write_text(link_profile(hc, LINK_PORT + i, tls=tls, nodelay=nodelay))
            profiles.append(p)
    else:
        p = folder / "brain.xml"
        p.write_text(link_profile(hc, None, peers, slots, tls=tls, nodelay=nodelay))
        profiles = [p]
    return Link(folder, profiles, conf, role == "robot")


class SlotPicker:
    """Gives each new robot process a slot (its listening port) that no live process
    holds: `Supervisor(env_for=SlotPicker(link))`. A slot handed out stays reserved a while,
    as the process binds it only once its imports are done; a slot whose process died
    early is taken again only when no other is free."""

    def __init__(self, link: Link, hold: float = 30.0) -> None:
        self.link, self.hold = link, hold
        self._reserved: dict[int, float] = {}

    def __call__(self, base: dict[str, str]) -> dict[str, str]:
        if not self.link.listens:
            return self.link.env(base)
        now = time.monotonic()
        free = [i for i in range(len(self.link.profiles)) if port_free(LINK_PORT + i)]
        for i in [i for i in free if self._reserved.get(i, 0.0) <= now] + free:
            self._reserved[i] = now + self.hold
            return self.link.env(base, self.link.profiles[i])
        raise PairError(f"all {len(self.link.profiles)} link ports "
                        f"({LINK_PORT}..{LINK_PORT + len(self.link.profiles) - 1}) are taken")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Fast DDS binds it
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


# ---------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="gamgin pair", description="the pet's certificates for an encrypted robot-brain "
        "link: `init` on the robot, `issue brain --out DIR` there, copy DIR to the brain, "
        "`install DIR` on the brain; then `gamgin up --role ... --peer ...` is encrypted")
    ap.add_argument("--root", help="pairing folder (default $GAMGIN_DATA/pair)")
    sub = ap.add_subparsers(dest="action", required=True)
    i = sub.add_parser("init", help="on the robot: make the pet's CA and the robot's certificate")
    i.add_argument("--name", default="robot")
    i.add_argument("--force", action="store_true", help="replace an existing CA")
    s = sub.add_parser("issue", help="on the robot: a certificate bundle for another host")
    s.add_argument("name", help="the host's name, e.g. brain")
    s.add_argument("--out", required=True, help="folder to write the bundle to")
    n = sub.add_parser("install", help="on the other host: make a bundle its identity")
    n.add_argument("bundle")
    sub.add_parser("show", help="this host's pairing state")
    args = ap.parse_args(argv)
    root = Path(args.root) if args.root else None
    try:
        if args.action == "init":
            hc = init(root, args.name, args.force)
            print(f"pet CA in {pair_root(root) / 'ca'} (keep it on the robot); this host is "
                  f"'{hc.name}'. Next: gamgin pair issue brain --out DIR")
        elif args.action == "issue":
            out = issue(args.name, Path(args.out), root)
            print(f"bundle for '{args.name}' in {out}: copy it to that host (it holds a "
                  f"private key) and run `gamgin pair install {out}` there")
        elif args.action == "install":
            hc = install(Path(args.bundle), root)
            print(f"this host is '{hc.name}' on the pet's link ({hc.cert.parent})")
        else:
            hc = host_cert(root)
            if hc is None:
                print(f"not paired ({pair_root(root) / 'host'} is empty): links are not "
                      "encrypted")
                return 1
            verify(hc)
            end = _openssl("x509", "-in", str(hc.cert), "-noout", "-enddate").strip()
            print(f"paired as '{hc.name}' ({hc.cert}; {end}); "
                  f"CA here: {(pair_root(root) / 'ca' / 'ca.key').exists()}")
    except PairError as exc:
        print(f"gamgin pair: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
