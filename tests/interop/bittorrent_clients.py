"""Real BitTorrent clients (libtorrent, aria2, transmission) and p2pkit as peers of one swarm.

A :class:`Scenario` lists the peers of one swarm on loopback, each on its own 127.0.0.x address:
seeders and leechers, optionally a p2pkit tracker and a pcap capture. :func:`scenario_script`
turns it into ONE bash script and :func:`run_scenario` runs that script through the ``netns``
fixture (``unshare -n``, only ``lo`` up, MTU 1500), so no third-party client ever sees a real
network. The script starts the tracker and the capture, then each peer in order, waiting until
it is ready (a seeder has checked its data, a leecher listens); then it waits for every leecher
to finish, bounded by :attr:`Scenario.timeout`; then it stops exactly the PIDs it started (TERM,
then KILL) and records every peer's exit status. The result carries the logs and statuses.

How each client is driven on loopback:

* libtorrent (python3-libtorrent 2.0, run by ``/usr/bin/python3``): :data:`LIBTORRENT_PEER`,
  a small session with DHT, LSD, UPnP and NAT-PMP off, plaintext only, TCP only, its own
  address; ``dial`` peers are connected with ``torrent_handle.connect_peer`` and re-dialled
  every 2 s while not connected (``min_reconnect_time`` 1 s). A magnet is added with
  ``parse_magnet_uri`` (libtorrent honours ``x.pe``). A leecher exits 0 when it is seeding.
* aria2 1.36: cannot be given a peer (no option, and it ignores ``x.pe`` in magnets), so a
  leecher must be dialled by the other side or learn peers from a tracker. A seeder checks its
  data (``--check-integrity=true``) and seeds forever (``--seed-ratio=0.0``); a leecher exits 0
  when done (``--seed-time=0``).
* transmission 3.00 (``transmission-daemon -f -g DIR`` plus ``transmission-remote``): never
  dials 127/8 peers, so it must always be dialled; as a leecher its data comes from a seeder
  that dials it. Completion is ``Percent Done: 100%`` in ``transmission-remote -t 1 -i``.
* p2pkit: the caller gives the command (:func:`p2pkit_seed_argv`, :func:`p2pkit_download_argv`);
  ready when its log shows ``ready`` or, without one, when it listens on its address.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from p2pkit.bittorrent.wire.create import create_torrent
from p2pkit.bittorrent.wire.metainfo import Metainfo

ROOT = Path(__file__).resolve().parents[2]
#: The Python that has python3-libtorrent (Debian's).
LT_PYTHON = "/usr/bin/python3"
#: How the p2pkit command line is started (there is no ``p2pkit/cli/__main__.py``).
P2PKIT_COMMAND: tuple[str, ...] = (
    sys.executable, "-c", "import sys; from p2pkit.cli import main; sys.exit(main())")
#: Seconds a peer (or the tracker, or tcpdump) may take to become ready.
READY_TIMEOUT = 20
#: Seconds between TERM and KILL when stopping what the script started.
KILL_GRACE = 5
#: Seconds added to :attr:`Scenario.timeout` for the whole namespace (start-up and shutdown).
NAMESPACE_SLACK = 45

Kind = Literal["libtorrent", "aria2", "transmission", "p2pkit"]
Role = Literal["seed", "leech"]
KINDS: tuple[str, ...] = ("libtorrent", "aria2", "transmission", "p2pkit")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,30}$")

#: One libtorrent session seeding or leeching one torrent; its argument is a JSON document with
#: role, host, port, save, torrent or magnet, dial ("host:port" list), trackers, timeout and
#: settings (overrides of the session settings). Prints READY, then DONE when a leecher is done.
LIBTORRENT_PEER = r'''
import json, signal, sys, time
import libtorrent as lt

cfg = json.loads(sys.argv[1])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
host, port = cfg["host"], cfg["port"]
settings = {
    "listen_interfaces": f"{host}:{port}", "outgoing_interfaces": host,
    "enable_dht": False, "enable_lsd": False, "enable_upnp": False, "enable_natpmp": False,
    "dht_bootstrap_nodes": "", "in_enc_policy": 2, "out_enc_policy": 2,
    "allow_multiple_connections_per_ip": True, "min_reconnect_time": 1,
    "enable_outgoing_utp": False, "enable_incoming_utp": False,
    "alert_mask": lt.alert_category.error | lt.alert_category.status
    | lt.alert_category.peer | lt.alert_category.tracker | lt.alert_category.connect,
}
settings.update(cfg.get("settings", {}))
s = lt.session(settings)
if cfg.get("magnet"):
    atp = lt.parse_magnet_uri(cfg["magnet"])
else:
    atp = lt.add_torrent_params()
    atp.ti = lt.torrent_info(cfg["torrent"])
atp.save_path = cfg["save"]
atp.trackers = list(atp.trackers) + cfg.get("trackers", [])
h = s.add_torrent(atp)
dial = [(p.rsplit(":", 1)[0], int(p.rsplit(":", 1)[1])) for p in cfg.get("dial", [])]
leech = cfg["role"] == "leech"
deadline = time.monotonic() + cfg["timeout"]
ready = False
next_dial = next_report = 0.0
while time.monotonic() < deadline:
    for a in s.pop_alerts():
        print("alert", type(a).__name__, a.message(), flush=True)
    st = h.status()
    now = time.monotonic()
    if not ready and (st.state not in (lt.torrent_status.checking_files,
                                       lt.torrent_status.checking_resume_data)
                      if leech else st.is_seeding):
        print("READY", flush=True)
        ready = True
    if leech and st.is_seeding:
        print("DONE", st.total_wanted, "bytes", flush=True)
        sys.exit(0)
    if now >= next_dial:
        connected = {(p.ip[0], p.ip[1]) for p in h.get_peer_info()}
        for peer in dial:
            if peer not in connected:
                h.connect_peer(peer)
        next_dial = now + 2.0
    if now >= next_report:
        print("status", st.state, f"progress={st.progress:.3f}", f"peers={st.num_peers}",
              f"has_metadata={st.has_metadata}", flush=True)
        next_report = now + 1.0
    time.sleep(0.1)
print("TIMEOUT", f"progress={h.status().progress:.3f}", flush=True)
sys.exit(3 if leech else 0)
'''


@dataclass(frozen=True, kw_only=True)
class Peer:
    """One peer of a scenario. Its log is ``WORK/<name>.log``.

    ``data_dir`` is the save path: the directory that holds (seed) or receives (leech) the
    torrent's content, i.e. ``data_dir/<torrent name>/...`` for a multi-file torrent. Give
    ``torrent`` (a .torrent path) or ``magnet``. ``dial`` lists ``host:port`` peers this one
    connects to (libtorrent only; p2pkit puts them in its ``argv``). ``argv`` is the command of
    a p2pkit peer. ``ready`` is a string whose appearance in the log means ready (default per
    kind; for p2pkit, listening on ``host:port``). ``settings`` overrides libtorrent session
    settings or transmission's settings.json; ``extra_args`` are appended to aria2c's options.
    ``trackers`` are announce URLs added to the torrent (not for p2pkit: use its argv).
    """

    name: str
    kind: Kind
    role: Role
    host: str
    port: int
    data_dir: Path
    torrent: Path | None = None
    magnet: str | None = None
    dial: tuple[str, ...] = ()
    trackers: tuple[str, ...] = ()
    argv: tuple[str, ...] = ()
    ready: str | None = None
    settings: Mapping[str, object] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    #: transmission only: the RPC port (on ``host``); default ``port + 1000``.
    rpc_port: int | None = None

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"peer name {self.name!r}: use [a-z][a-z0-9_-]*")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind {self.kind!r} is not one of {KINDS}")
        if self.role not in ("seed", "leech"):
            raise ValueError(f"{self.name}: role {self.role!r} is not seed or leech")
        if not self.host.startswith("127."):
            raise ValueError(f"{self.name}: {self.host} is not a loopback (127/8) address")
        if self.kind == "p2pkit":
            if not self.argv:
                raise ValueError(f"{self.name}: a p2pkit peer needs its argv")
            return
        if (self.torrent is None) == (self.magnet is None):
            raise ValueError(f"{self.name}: give exactly one of torrent and magnet")
        if self.role == "seed" and self.torrent is None:
            raise ValueError(f"{self.name}: a seeder needs the .torrent")
        if self.dial and self.kind != "libtorrent":
            raise ValueError(f"{self.name}: {self.kind} cannot be told to dial a peer; "
                             "let the other side dial it or use a tracker")

    @property
    def address(self) -> str:
        """``host:port``, as given to another peer's ``dial`` or ``--peer``."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True, kw_only=True)
class Tracker:
    """The p2pkit tracker (``bt tracker``) on ``host``, HTTP and UDP; log ``tracker.log``."""

    host: str = "127.0.0.1"
    http_port: int = 6969
    udp_port: int | None = 6969
    interval: int = 30
    python: str = sys.executable

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/announce"

    @property
    def udp_url(self) -> str:
        return f"udp://{self.host}:{self.udp_port}/announce"

    def argv(self) -> list[str]:
        if self.udp_port not in (None, self.http_port):
            raise ValueError("p2pkit bt tracker serves UDP on its HTTP port (or not at all)")
        argv = [self.python, "-c", "from p2pkit.cli.bt_tracker import tracker; tracker()",
                "--listen", f"{self.host}:{self.http_port}",
                "--interval", str(self.interval), "-v"]
        if self.udp_port is None:
            argv.append("--no-udp")
        return argv


@dataclass(frozen=True, kw_only=True)
class Capture:
    """tcpdump on ``lo`` for the whole scenario (full packets, flushed per packet)."""

    path: Path
    #: A pcap-filter expression; the default keeps TCP and UDP between 127/8 addresses.
    filter: str = "tcp or udp"


@dataclass(frozen=True, kw_only=True)
class Scenario:
    """A swarm on loopback: peers started in order (seeders first is usual), then waited for.

    ``timeout``: seconds the leechers get to finish once every peer is ready.
    """

    work: Path
    peers: tuple[Peer, ...]
    tracker: Tracker | None = None
    capture: Capture | None = None
    timeout: float = 45.0
    #: Run each peer under :data:`MEASURE_RUNNER` (peak RSS and CPU time in the outcome).
    measure: bool = False

    def __post_init__(self) -> None:
        names = [p.name for p in self.peers]
        if len(set(names)) != len(names) or {"tracker", "capture"} & set(names):
            raise ValueError(f"peer names must be unique and not tracker/capture: {names}")
        endpoints = [p.address for p in self.peers]
        if len(set(endpoints)) != len(endpoints):
            raise ValueError(f"two peers share an address: {endpoints}")
        if not any(p.role == "leech" for p in self.peers):
            raise ValueError("a scenario needs at least one leecher (it ends when they do)")


@dataclass(frozen=True, kw_only=True)
class PeerOutcome:
    """What became of one peer: ``exit_status`` (None if it never started), whether the script
    had to stop it (``stopped``: seeders normally are), whether it became ready, and its log
    (for transmission: the daemon's log, then ``--- control ---`` and the RPC poller's)."""

    name: str
    exit_status: int | None
    stopped: bool
    ready: bool
    log: str
    #: Seconds from its start to its own exit (None when it had to be stopped).
    seconds: float | None = None
    #: With :attr:`Scenario.measure`: the client's ``getrusage`` (``max_rss_kib``, ``user``,
    #: ``system``, ``wall``); for transmission, the daemon's.
    usage: dict[str, float] | None = None

    @property
    def finished(self) -> bool:
        """A leecher that exited by itself with status 0 (it has the whole torrent)."""
        return self.exit_status == 0 and not self.stopped


@dataclass(frozen=True, kw_only=True)
class ScenarioResult:
    """``returncode``: 0 when every leecher finished, 1 when one failed, 3 when a peer never
    became ready, 124 when the leechers ran out of time; ``script_log`` is the script's own
    trace (what it started, when, which PIDs it stopped)."""

    returncode: int
    peers: dict[str, PeerOutcome]
    tracker_log: str
    script_log: str
    stderr: str
    capture: Path | None

    def report(self) -> str:
        """Everything, for an assertion message."""
        parts = [f"returncode={self.returncode}", "--- script ---", self.script_log,
                 "--- stderr ---", self.stderr[-3000:]]
        if self.tracker_log:
            parts += ["--- tracker ---", self.tracker_log[-3000:]]
        for p in self.peers.values():
            parts += [f"--- {p.name}: exit={p.exit_status} stopped={p.stopped} "
                      f"ready={p.ready} seconds={p.seconds} usage={p.usage} ---",
                      p.log[-4000:]]
        return "\n".join(parts)


# Commands per client


def libtorrent_command(peer: Peer, work: Path, timeout: float) -> list[str]:
    """``/usr/bin/python3 lt_peer.py JSON`` for a libtorrent peer."""
    cfg = {"role": peer.role, "host": peer.host, "port": peer.port,
           "save": str(peer.data_dir), "dial": list(peer.dial), "trackers": list(peer.trackers),
           "timeout": timeout, "settings": dict(peer.settings)}
    if peer.torrent is not None:
        cfg["torrent"] = str(peer.torrent)
    else:
        cfg["magnet"] = peer.magnet
    return [LT_PYTHON, str(work / "lt_peer.py"), json.dumps(cfg)]


def aria2_command(peer: Peer, work: Path) -> list[str]:
    """``aria2c`` for one torrent on ``peer.host:peer.port``, nothing but loopback.

    It announces to the torrent's (or magnet's) trackers and ``peer.trackers``. aria2 sends
    UDP tracker requests from its DHT socket, so with a ``udp://`` tracker its DHT is on (UDP
    ``peer.port``), with no entry point and a fresh routing table file: it learns nothing there.
    """
    udp = any(url.startswith("udp://") for url in peer.trackers)
    argv = ["aria2c", f"--interface={peer.host}", f"--listen-port={peer.port}",
            "--disable-ipv6=true", "--enable-dht6=false", "--bt-enable-lpd=false",
            "--enable-peer-exchange=false", f"--dir={peer.data_dir}", "--file-allocation=none",
            "--console-log-level=notice", "--summary-interval=1", "--allow-overwrite=true"]
    if udp:
        argv += ["--enable-dht=true", f"--dht-listen-port={peer.port}",
                 f"--dht-file-path={work / (peer.name + '.dht.dat')}"]
    else:
        argv.append("--enable-dht=false")
    if peer.trackers:
        argv.append("--bt-tracker=" + ",".join(peer.trackers))
    if peer.role == "seed":
        argv += ["--seed-ratio=0.0", "--check-integrity=true"]
    else:
        argv += ["--seed-time=0"]
    argv += list(peer.extra_args)
    argv.append(str(peer.torrent) if peer.torrent is not None else str(peer.magnet))
    return argv


def transmission_settings(peer: Peer) -> dict[str, object]:
    """settings.json for a transmission-daemon on ``peer.host``: loopback only, plaintext,
    no DHT/LPD/PEX/port forwarding/uTP, RPC open to 127/8, seeding without limits."""
    settings: dict[str, object] = {
        "dht-enabled": False, "lpd-enabled": False, "pex-enabled": False,
        "port-forwarding-enabled": False, "utp-enabled": False, "encryption": 0,
        "bind-address-ipv4": peer.host, "bind-address-ipv6": "::1",
        "peer-port": peer.port, "peer-port-random-on-start": False,
        "rpc-enabled": True, "rpc-bind-address": peer.host, "rpc-port": _rpc_port(peer),
        "rpc-authentication-required": False, "rpc-whitelist": "127.*.*.*",
        "rpc-whitelist-enabled": True, "rpc-host-whitelist-enabled": False,
        "download-dir": str(peer.data_dir), "incomplete-dir-enabled": False,
        "rename-partial-files": False, "start-added-torrents": True,
        "ratio-limit-enabled": False, "idle-seeding-limit-enabled": False,
        "blocklist-enabled": False, "watch-dir-enabled": False, "message-level": 2,
    }
    settings.update(peer.settings)
    return settings


def _rpc_port(peer: Peer) -> int:
    return peer.rpc_port if peer.rpc_port is not None else peer.port + 1000


#: The transmission RPC poller: adds the torrent, prints READY (seeder: once verified at 100%),
#: then (leecher) exits 0 at "Percent Done: 100%"; it prints the torrent's state every second.
TRANSMISSION_CONTROL = r'''
trap 'exit 143' TERM  # after the current command: leaves no orphan behind
R="transmission-remote $1"; SOURCE=$2; DIR=$3; ROLE=$4; shift 4
for i in $(seq 100); do $R -l >/dev/null 2>&1 && break; sleep 0.1; done
$R -a "$SOURCE" -w "$DIR" || exit 2
for url in "$@"; do $R -t 1 -td "$url"; done
[ "$ROLE" = leech ] && echo READY
while :; do
    INFO=$($R -t 1 -i)
    echo "$INFO" | grep -E "State:|Percent Done:|Peers:|Error:"
    if echo "$INFO" | grep -q "Percent Done: 100%"; then
        if [ "$ROLE" = leech ]; then echo DONE; exit 0; fi
        [ -n "${SEEDING:-}" ] || { echo READY; SEEDING=1; }
    fi
    sleep 1
done
'''


#: Runs a command as its child and writes the child's resource use as JSON (``max_rss_kib``,
#: ``user``, ``system``, ``wall`` seconds) to a file; forwards TERM/INT/HUP to the child, which
#: is killed too should this runner die (PR_SET_PDEATHSIG). Exits with the child's status.
MEASURE_RUNNER = r'''
import ctypes, json, os, signal, subprocess, sys, time
out, argv = sys.argv[1], sys.argv[2:]
libc = ctypes.CDLL(None, use_errno=True)
start = time.monotonic()
child = subprocess.Popen(argv, preexec_fn=lambda: libc.prctl(1, signal.SIGKILL))
for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, lambda s, _f: child.send_signal(s))
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(out, "w") as f:
    json.dump({"max_rss_kib": usage.ru_maxrss, "user": usage.ru_utime,
               "system": usage.ru_stime, "wall": time.monotonic() - start}, f)
sys.exit(128 - child.returncode if child.returncode < 0 else child.returncode)
'''


# The script


def _q(argv: Sequence[str]) -> str:
    return " ".join(shlex.quote(str(a)) for a in argv)


def _measured(scenario: Scenario, name: str, argv: Sequence[str]) -> list[str]:
    if not scenario.measure:
        return list(argv)
    return [sys.executable, str(scenario.work / "measure.py"),
            str(scenario.work / "status" / f"{name}.rusage"), *argv]


def _log_ready(log: str, text: str) -> str:
    return f"grep -qF -- {shlex.quote(text)} {shlex.quote(log)}"


def _listening(host: str, port: int) -> str:
    # A filter, not a grep: libtorrent binds to the device too and ss shows "127.0.0.3%lo:6882".
    return f"ss -Hltn '( src {host}:{port} or src 0.0.0.0:{port} )' | grep -q ."


_PRELUDE = r'''set -u
cd "$WORK"
STARTED=""          # every PID this script started, and nothing else is ever signalled
declare -A NAME_OF
log() { echo "$(date +%T.%N | cut -c1-12) $*" >> script.log; }
start() {  # start NAME LOGFILE CMD... : run CMD in the background, remember its PID
    local name=$1 out=$2; shift 2
    "$@" > "$out" 2>&1 &
    STARTED="$STARTED $!"; NAME_OF[$!]=$name; echo $! > "status/$name.pid"
    date +%s.%N > "status/$name.t0"
    log "started $name pid $! : $*"
}
wait_ready() {  # wait_ready NAME PID CHECK : 0 when CHECK succeeds, 2 when the process exits
               # first (a fast leecher may be done already), 1 after READY_TIMEOUT
    local name=$1 pid=$2 check=$3 i
    for i in $(seq $((READY_TIMEOUT * 10))); do
        if eval "$check"; then log "$name ready"; touch "status/$name.ready"; return 0; fi
        kill -0 "$pid" 2>/dev/null || { log "$name exited before it was ready"; return 2; }
        sleep 0.1
    done
    log "$name not ready after ${READY_TIMEOUT}s"; return 1
}
STOPPED=0
stop_pids() {  # stop_pids SIGNAL PID... : signal those still running, KILL them after KILL_GRACE
    local sig=$1 pid i alive=""; shift
    for pid in "$@"; do
        if kill -0 "$pid" 2>/dev/null; then
            touch "status/${NAME_OF[$pid]}.stopped"
            log "stopping ${NAME_OF[$pid]} pid $pid"; kill "-$sig" "$pid"
        fi
    done
    for i in $(seq $((KILL_GRACE * 10))); do
        alive=""
        for pid in "$@"; do kill -0 "$pid" 2>/dev/null && alive="$alive $pid"; done
        [ -z "$alive" ] && break
        sleep 0.1
    done
    for pid in $alive; do log "killing ${NAME_OF[$pid]} pid $pid"; kill -KILL "$pid" 2>/dev/null; done
}
stop_all() {  # the peers and the tracker (TERM), then tcpdump last (INT, so it flushes)
    [ "$STOPPED" = 1 ] && return; STOPPED=1
    local pid peers="" capture=""
    for pid in $STARTED; do
        if [ "${NAME_OF[$pid]}" = capture ]; then capture=$pid; else peers="$peers $pid"; fi
    done
    stop_pids TERM $peers
    [ -n "$capture" ] && { sleep 1; stop_pids INT "$capture"; }
    for pid in $STARTED; do
        [ -e "status/${NAME_OF[$pid]}.rc" ] && continue
        wait "$pid"; echo $? > "status/${NAME_OF[$pid]}.rc"
    done
}
TIMER=""
trap 'log "signalled"; [ -n "$TIMER" ] && kill "$TIMER" 2>/dev/null; stop_all; exit 124' TERM INT HUP
mkdir -p status
'''


def scenario_script(scenario: Scenario) -> str:
    """The bash script that runs ``scenario`` (run it inside the namespace, cwd-independent)."""
    lines: list[str] = []
    lines.append(f"READY_TIMEOUT={READY_TIMEOUT}\nKILL_GRACE={KILL_GRACE}")
    lines.append(_PRELUDE)
    lines.append("ethtool -K lo tso off gso off gro off > /dev/null 2>&1 || true")
    if scenario.capture is not None:
        cap = scenario.capture
        lines.append(f"start capture capture.log tcpdump -i lo -s 0 -U -B 65536 -n "
              f"-w {shlex.quote(str(cap.path))} {shlex.quote(cap.filter)}")
        lines.append('wait_ready capture $! "grep -q \'listening on\' capture.log" || { stop_all; exit 3; }')
    if scenario.tracker is not None:
        tr = scenario.tracker
        lines.append(f"start tracker tracker.log {_q(tr.argv())}")
        check = _log_ready("tracker.log", "UDP tracker" if tr.udp_port is not None
                           else "HTTP tracker")
        lines.append(f"wait_ready tracker $! {shlex.quote(check)} || {{ stop_all; exit 3; }}")
    peer_timeout = scenario.timeout + len(scenario.peers) * READY_TIMEOUT + 10
    leechers = []
    for peer in scenario.peers:
        log = f"{peer.name}.log"
        if peer.kind == "libtorrent":
            argv = libtorrent_command(peer, scenario.work, peer_timeout)
            lines.append(f"start {peer.name} {log} {_q(_measured(scenario, peer.name, argv))}")
            check = _log_ready(log, peer.ready or "READY")
        elif peer.kind == "aria2":
            argv = aria2_command(peer, scenario.work)
            lines.append(f"start {peer.name} {log} {_q(_measured(scenario, peer.name, argv))}")
            check = _log_ready(log, peer.ready or ("SEED(" if peer.role == "seed"
                                                   else "listening on TCP port"))
        elif peer.kind == "transmission":
            config = f"{peer.name}.transmission"
            argv = ["transmission-daemon", "-f", "-g", config, "--log-info"]
            lines.append(f"start {peer.name}-daemon {log} "
                  f"{_q(_measured(scenario, peer.name, argv))}")
            control = [f"{peer.host}:{_rpc_port(peer)}",
                       str(peer.torrent) if peer.torrent is not None else str(peer.magnet),
                       str(peer.data_dir), peer.role, *peer.trackers]
            lines.append(f"start {peer.name} {peer.name}.control.log bash transmission_control.sh "
                  f"{_q(control)}")
            check = _log_ready(f"{peer.name}.control.log", peer.ready or "READY")
        else:
            lines.append(f"start {peer.name} {log} {_q(_measured(scenario, peer.name, peer.argv))}")
            check = (_log_ready(log, peer.ready) if peer.ready
                     else _listening(peer.host, peer.port))
        fatal = "{ stop_all; exit 3; }"
        if peer.role == "leech":  # a leecher that is done before it looked ready is fine
            fatal = "[ $? = 2 ] || " + fatal
        lines.append(f"wait_ready {peer.name} $! {shlex.quote(check)} || {fatal}")
        if peer.role == "seed" and _announces_to(peer, scenario.tracker):
            # A leecher that asks the tracker first would hear of no one until the interval.
            seen = _log_ready("tracker.log", f"from {peer.address} ")
            lines.append(f"wait_ready {peer.name}-announce $! {shlex.quote(seen)} "
                  "|| { stop_all; exit 3; }")
        if peer.role == "leech":
            leechers.append(peer.name)
    lines.append(_wait_for_leechers(leechers, scenario.timeout))
    return "\n".join(lines) + "\n"


def _announces_to(peer: Peer, tracker: Tracker | None) -> bool:
    """Whether ``peer`` is set to announce to ``tracker`` (its trackers, or its argv)."""
    if tracker is None:
        return False
    ports = {tracker.http_port, tracker.udp_port} - {None}
    endpoints = {f"{tracker.host}:{port}/" for port in ports}
    return any(e in url for url in (*peer.trackers, *peer.argv) for e in endpoints)


def _wait_for_leechers(names: Sequence[str], timeout: float) -> str:
    pids = " ".join(f"$(cat status/{n}.pid)" for n in names)
    return f'''
REMAINING="{pids}"
RC=0
sleep {int(timeout)} &
TIMER=$!
log "waiting {int(timeout)}s for leechers: {' '.join(names)}"
while [ -n "$REMAINING" ]; do
    DONE=""
    wait -n -p DONE $REMAINING $TIMER
    STATUS=$?
    if [ -z "$DONE" ]; then log "wait failed with $STATUS"; RC=1; break; fi
    if [ "$DONE" = "$TIMER" ]; then log "leechers out of time"; RC=124; break; fi
    log "${{NAME_OF[$DONE]}} exited with $STATUS"
    echo "$STATUS" > "status/${{NAME_OF[$DONE]}}.rc"
    date +%s.%N > "status/${{NAME_OF[$DONE]}}.t1"
    [ "$STATUS" = 0 ] || RC=1
    REMAINING=$(for p in $REMAINING; do [ "$p" = "$DONE" ] || echo "$p"; done)
done
kill "$TIMER" 2>/dev/null; wait "$TIMER" 2>/dev/null
stop_all
log "done rc=$RC"
exit $RC
'''


def prepare(scenario: Scenario) -> None:
    """Write the helper files the script uses into ``scenario.work``."""
    work = scenario.work
    work.mkdir(parents=True, exist_ok=True)
    (work / "lt_peer.py").write_text(LIBTORRENT_PEER)
    (work / "transmission_control.sh").write_text(TRANSMISSION_CONTROL)
    (work / "measure.py").write_text(MEASURE_RUNNER)
    for peer in scenario.peers:
        peer.data_dir.mkdir(parents=True, exist_ok=True)
        if peer.kind == "transmission":
            config = work / f"{peer.name}.transmission"
            config.mkdir(exist_ok=True)
            (config / "settings.json").write_text(json.dumps(transmission_settings(peer),
                                                             indent=1))
    (work / "scenario.sh").write_text(scenario_script(scenario))


NetnsRunner = Callable[..., subprocess.CompletedProcess]


def run_scenario(netns: NetnsRunner, scenario: Scenario) -> ScenarioResult:
    """Run ``scenario`` inside a fresh namespace (``netns`` is the fixture of the same name)."""
    prepare(scenario)
    work = scenario.work
    env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
           "HOME": str(work), "LANG": "C.UTF-8", "WORK": str(work),
           "PYTHONPATH": str(ROOT)}
    budget = scenario.timeout + READY_TIMEOUT * (len(scenario.peers) + 2) + NAMESPACE_SLACK
    done = netns(["bash", str(work / "scenario.sh")], timeout=budget, env=env)
    outcomes = {}
    for peer in scenario.peers:
        outcomes[peer.name] = PeerOutcome(
            name=peer.name, exit_status=_exit_status(work, peer.name),
            stopped=(work / "status" / f"{peer.name}.stopped").exists(),
            ready=(work / "status" / f"{peer.name}.ready").exists(), log=_peer_log(work, peer),
            seconds=_seconds(work, peer.name), usage=_usage(work, peer.name))
    return ScenarioResult(returncode=done.returncode, peers=outcomes,
                          tracker_log=_read(work / "tracker.log"),
                          script_log=_read(work / "script.log"), stderr=done.stderr,
                          capture=scenario.capture.path if scenario.capture else None)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _exit_status(work: Path, name: str) -> int | None:
    path = work / "status" / f"{name}.rc"
    return int(path.read_text().strip()) if path.exists() else None


def _seconds(work: Path, name: str) -> float | None:
    t0, t1 = (work / "status" / f"{name}.t0", work / "status" / f"{name}.t1")
    if not (t0.exists() and t1.exists()):
        return None
    return float(t1.read_text()) - float(t0.read_text())


def _usage(work: Path, name: str) -> dict[str, float] | None:
    path = work / "status" / f"{name}.rusage"
    return json.loads(path.read_text()) if path.exists() else None


def _peer_log(work: Path, peer: Peer) -> str:
    log = _read(work / f"{peer.name}.log")
    if peer.kind == "transmission":
        log += "\n--- control ---\n" + _read(work / f"{peer.name}.control.log")
    return log


# p2pkit commands (the lead plugs these into Peer(kind="p2pkit", argv=...))


def p2pkit_seed_argv(torrent: Path, data: Path, *, listen: str, peers: Sequence[str] = (),
                     command: Sequence[str] = P2PKIT_COMMAND) -> tuple[str, ...]:
    """``p2pkit bt seed T --data D --listen H:P [--peer H:P ...]``."""
    argv = [*command, "bt", "seed", str(torrent), "--data", str(data), "--listen", listen]
    for p in peers:
        argv += ["--peer", p]
    return tuple(argv)


def p2pkit_download_argv(source: Path | str, out: Path, *, peers: Sequence[str] = (),
                         listen: str | None = None,
                         command: Sequence[str] = P2PKIT_COMMAND) -> tuple[str, ...]:
    """``p2pkit bt download T|MAGNET -o DIR [--listen H:P] [--peer H:P ...]``."""
    argv = [*command, "bt", "download", str(source), "-o", str(out)]
    if listen is not None:
        argv += ["--listen", listen]
    for p in peers:
        argv += ["--peer", p]
    return tuple(argv)


# Making content and checking the result


@dataclass(frozen=True, kw_only=True)
class SwarmContent:
    """A torrent, the directory a seeder serves it from, and the SHA-256 of each file."""

    torrent: Path
    seed_dir: Path
    digests: dict[str, str | None]


def make_content(root: Path, files: Mapping[str, int], *, name: str = "set",
                 piece_length: int | None = 65536, **create_options: object) -> SwarmContent:
    """Write ``files`` (path inside the torrent -> size; pseudo-random bytes, written 1 MiB at a
    time so that large sizes stay cheap in memory) under ``root/seed/name`` and the torrent made
    by :func:`p2pkit.bittorrent.wire.create.create_torrent` to ``root/name.torrent``;
    ``create_options`` go to it (``version``, ``trackers`` ...)."""
    seed_dir = root / "seed"
    for path_text, size in files.items():
        path = seed_dir / name / path_text
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for index, start in enumerate(range(0, size, 1 << 20)):
                seed = f"{path_text}:{index}".encode()
                out.write(hashlib.shake_256(seed).digest(min(1 << 20, size - start)))
    torrent = root / f"{name}.torrent"
    torrent.write_bytes(create_torrent(seed_dir / name, piece_length=piece_length,
                                       **create_options))
    return SwarmContent(torrent=torrent, seed_dir=seed_dir,
                        digests=content_digests(torrent, seed_dir))


def content_digests(torrent: Path, save_path: Path) -> dict[str, str | None]:
    """SHA-256 of each file of ``torrent`` under ``save_path`` (None when missing), keyed by
    the path inside the torrent; padding files are left out."""
    meta = Metainfo.parse(torrent.read_bytes())
    base = save_path / meta.name if meta.multi_file else save_path
    digests: dict[str, str | None] = {}
    for f in meta.files:
        if f.is_padding:
            continue
        path = base.joinpath(*f.path)
        digests[f.path_text] = _sha256(path) if path.is_file() else None
    return digests


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()
