"""
The machinery of the benchmarks (see ``bench/run.py``): the peers' venv,
our own nginx, the fake HQ, launching turrets and Locust, and sampling
memory and CPU from ``/proc``.

Every child process is started in its own session (so a Ctrl-C in the
terminal reaches only the harness) and is recorded; :func:`stop_children`
ends those still running, by their pid, when the harness ends for any
reason.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
SCENARIOS = BENCH / "scenarios"
WORK = BENCH / ".work"
PEER_VENV = BENCH / ".venv"
PEER_PY = PEER_VENV / "bin" / "python"
#: What the peers' venv holds; a change re-installs it.
PEER_REQUIREMENTS = ("oct-turrets==0.2.8", "locust>=2,<3", "pyzmq")
TWISTD = Path(sys.executable).parent / "twistd"


def log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------
# Child processes
# --------------------------------------------------------------------------

_children: list[subprocess.Popen] = []


def spawn(argv: list[str], *, log_path: Path | None = None, stdout: Any = None, **kw: Any) -> subprocess.Popen:
    """
    Start a child in its own session and remember it; its output goes to
    ``log_path`` (both streams) unless ``stdout`` is given.
    """
    if log_path is not None and stdout is None:
        out = open(log_path, "ab")
        kw.setdefault("stderr", subprocess.STDOUT)
    else:
        out = stdout
        if log_path is not None:
            kw.setdefault("stderr", open(log_path, "ab"))
    process = subprocess.Popen(argv, stdout=out, stdin=subprocess.DEVNULL, start_new_session=True, **kw)
    _children.append(process)
    return process


def end_process(process: subprocess.Popen, first: int = signal.SIGTERM, grace: float = 10.0) -> str:
    """
    End one child: ``first`` signal, then SIGKILL after ``grace`` seconds.
    :return: how it ended.
    """
    if process.poll() is not None:
        return f"exited {process.returncode}"
    try:
        process.send_signal(first)
    except ProcessLookupError:
        pass
    try:
        process.wait(grace)
        return f"ended by {signal.Signals(first).name} ({process.returncode})"
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return "killed (SIGKILL)"


def stop_children() -> None:
    """
    End every child still running (SIGTERM, then SIGKILL), last first.
    """
    while _children:
        process = _children.pop()
        if process.poll() is None:
            end_process(process, grace=5.0)


def forget_finished() -> None:
    _children[:] = [p for p in _children if p.poll() is None]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_version() -> str:
    """
    The turret code a run uses: the commit, plus a digest of uncommitted
    changes to the turret's files (the tree may change while the bench runs).
    """
    import hashlib

    def git(*args: str) -> str:
        out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return out.stdout if out.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    diff = git("diff", "HEAD", "--", "octtwisted", "twisted", "setup.cfg")
    return head + ("+" + hashlib.sha1(diff.encode()).hexdigest()[:8] if diff else "")


# --------------------------------------------------------------------------
# The peers' venv and nginx
# --------------------------------------------------------------------------


def ensure_peer_venv() -> None:
    """
    Make ``bench/.venv`` with oct-turrets, Locust and pyzmq (once; again
    if the requirements changed).
    """
    stamp = PEER_VENV / ".bench-installed"
    wanted = "\n".join(PEER_REQUIREMENTS)
    if stamp.exists() and stamp.read_text() == wanted and PEER_PY.exists():
        return
    base = getattr(sys, "_base_executable", None) or sys.executable
    if not PEER_PY.exists():
        log(f"creating the peers' venv {PEER_VENV}")
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
    log("installing " + " ".join(PEER_REQUIREMENTS) + " into it")
    subprocess.run(
        [str(PEER_PY), "-m", "pip", "install", "--quiet", *PEER_REQUIREMENTS],
        check=True,
    )
    stamp.write_text(wanted)


def nginx_binary() -> str:
    """
    The nginx executable; installs nginx-light with apt-get if missing.
    """
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found:
        return found
    if os.geteuid() != 0:
        raise SystemExit("nginx is missing: install it (apt-get install -y nginx-light) and run again")
    log("nginx is missing: apt-get install -y nginx-light")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(["apt-get", "install", "-y", "nginx-light"], env=env).returncode != 0:
        subprocess.run(["apt-get", "update"], env=env, check=True)
        subprocess.run(["apt-get", "install", "-y", "nginx-light"], env=env, check=True)
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        raise SystemExit("nginx-light installed but no nginx binary found")
    return found


NGINX_CONF = """\
daemon off;
master_process on;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 120s;
    keepalive_requests 10000000;
    client_body_temp_path {dir}/tmp/body;
    proxy_temp_path {dir}/tmp/proxy;
    fastcgi_temp_path {dir}/tmp/fastcgi;
    uwsgi_temp_path {dir}/tmp/uwsgi;
    scgi_temp_path {dir}/tmp/scgi;
    types {{ text/plain txt; }}
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port};
        root {dir}/www;
        index index.txt;
    }}
    server {{
        listen 127.0.0.1:{tls_port} ssl;
        ssl_certificate {dir}/cert.pem;
        ssl_certificate_key {dir}/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;
        root {dir}/www;
        index index.txt;
    }}
}}
"""


def self_signed_certificate(cert: Path, key: Path) -> None:
    """
    Write a self-signed certificate for 127.0.0.1 and localhost (EC P-256,
    as most HTTPS sites use today) and its key, with the ``openssl`` tool.
    """
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "7", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )


class Nginx:
    """
    Our own nginx: one worker, no access log, ``daemon off`` as our child,
    on free 127.0.0.1 ports, serving a 3-byte file at ``/``: plain HTTP on
    ``port``, HTTPS on ``tls_port`` with a self-signed certificate
    (``cert``, which is also its own CA: ``tls_ca`` for our turret).
    """

    def __init__(self) -> None:
        self.binary = nginx_binary()
        self.dir = Path(tempfile.mkdtemp(prefix="oct-bench-nginx-"))
        self.cert = self.dir / "cert.pem"
        self.port = 0
        self.tls_port = 0
        self.process: subprocess.Popen | None = None
        self.version = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def tls_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}/"

    def start(self) -> None:
        d = self.dir
        os.chmod(d, 0o755)
        (d / "www").mkdir()
        (d / "tmp").mkdir()
        (d / "www" / "index.txt").write_bytes(b"ok\n")
        os.chmod(d / "www", 0o755)
        os.chmod(d / "www" / "index.txt", 0o644)
        self_signed_certificate(self.cert, d / "key.pem")
        os.chmod(self.cert, 0o644)
        os.chmod(d / "key.pem", 0o644)
        version = subprocess.run([self.binary, "-v"], capture_output=True, text=True)
        self.version = (version.stderr or version.stdout).strip().split("/")[-1]
        for attempt in range(5):
            self.port = free_port()
            self.tls_port = free_port()
            (d / "nginx.conf").write_text(NGINX_CONF.format(dir=d, port=self.port, tls_port=self.tls_port))
            self.process = spawn(
                [self.binary, "-p", str(d), "-c", str(d / "nginx.conf"), "-e", str(d / "error.log")],
                log_path=d / "stdout.log",
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    break
                try:
                    with urllib.request.urlopen(self.url, timeout=1) as response:
                        body = response.read()
                    if body != b"ok\n":
                        raise SystemExit(f"nginx serves {body!r}, not the 3-byte file")
                    import ssl

                    trusting = ssl.create_default_context(cafile=str(self.cert))
                    with urllib.request.urlopen(self.tls_url, timeout=1, context=trusting) as response:
                        if response.read() != b"ok\n":
                            raise SystemExit("nginx over TLS does not serve the 3-byte file")
                    log(f"nginx {self.version} (pid {self.process.pid}) serves {self.url} and {self.tls_url}")
                    return
                except OSError:
                    time.sleep(0.1)
            end_process(self.process, signal.SIGQUIT, 5)
        errors = (d / "error.log").read_text(errors="replace") if (d / "error.log").exists() else ""
        raise SystemExit(f"nginx did not start:\n{errors}")

    def worker_pids(self) -> list[int]:
        if self.process is None:
            return []
        return [pid for pid, ppid in _ppids().items() if ppid == self.process.pid]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            end_process(self.process, signal.SIGQUIT, 5)
        shutil.rmtree(self.dir, ignore_errors=True)


# --------------------------------------------------------------------------
# /proc: memory and CPU
# --------------------------------------------------------------------------


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def _ppids() -> dict[int, int]:
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields:
                parents[int(entry)] = int(fields[1])
    return parents


def descendants(root: int) -> set[int]:
    parents = _ppids()
    family = {root}
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in family and pid not in family:
                family.add(pid)
                grew = True
    return family


def cpu_snapshot() -> tuple[float, int, int]:
    """
    (time, machine busy jiffies, jiffies of this harness and all its
    descendants): two snapshots tell how much CPU others used meanwhile.
    """
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    busy = sum(values) - values[3] - (values[4] if len(values) > 4 else 0)
    ours = 0
    for pid in descendants(os.getpid()):
        fields = _stat_fields(pid)
        if fields:
            ours += int(fields[11]) + int(fields[12])
    return time.monotonic(), busy, ours


def process_jiffies(pid: int) -> int | None:
    """User + system CPU jiffies of one process (its threads included)."""
    fields = _stat_fields(pid)
    return int(fields[11]) + int(fields[12]) if fields else None


def process_cpu(pid: int, before: tuple[float, int | None], after: tuple[float, int | None], rate: float | None) -> dict[str, float]:
    """
    The cores one process used between two ``(monotonic, jiffies)``
    samples, and its CPU microseconds per request at ``rate`` per second.
    """
    if before[1] is None or after[1] is None:
        return {}
    hz = os.sysconf("SC_CLK_TCK")
    cores = (after[1] - before[1]) / hz / max(after[0] - before[0], 1e-9)
    out = {"process_cores": cores}
    if rate:
        out["cpu_us_per_request"] = cores / rate * 1e6
    return out


def other_cpu(before: tuple[float, int, int], after: tuple[float, int, int]) -> dict[str, float]:
    """
    Cores used by the whole machine, by us, and by other processes between
    two snapshots.
    """
    hz = os.sysconf("SC_CLK_TCK")
    seconds = max(after[0] - before[0], 1e-9)
    machine = (after[1] - before[1]) / hz / seconds
    ours = (after[2] - before[2]) / hz / seconds
    return {"machine_cores": machine, "our_cores": ours, "other_cores": max(0.0, machine - ours)}


class Scraper(threading.Thread):
    """
    Scrapes ``url`` every ``interval`` seconds (a Prometheus of one
    target) while started, e.g. a turret's ``--metrics`` endpoint during
    a run's window: how many scrapes, how many failed, how long each took.
    """

    def __init__(self, url: str, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = interval
        self.times_ms: list[float] = []
        self.failures: list[str] = []
        self.bytes = 0
        #: the last answer's body
        self.last = b""
        self._go = threading.Event()
        self._stop = threading.Event()

    def begin(self) -> None:
        """Start scraping (the thread is started already)."""
        self._go.set()

    def run(self) -> None:
        import urllib.request

        self._go.wait()
        while not self._stop.is_set():
            began = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as answer:
                    self.last = answer.read()
                    self.bytes = len(self.last)
                self.times_ms.append((time.monotonic() - began) * 1000)
            except Exception as e:  # counted, not raised: the run goes on
                self.failures.append(repr(e))
            self._stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def stop(self) -> None:
        self._go.set()
        self._stop.set()

    def figures(self) -> dict[str, Any]:
        times = sorted(self.times_ms)
        return {
            "scrapes": len(times),
            "scrape_failures": len(self.failures),
            "scrape_ms_median": times[len(times) // 2] if times else None,
            "scrape_ms_max": times[-1] if times else None,
            "scrape_bytes": self.bytes,
            # what the last answer held: request names and custom timers
            "scrape_names": len(set(re.findall(rb'oct_requests_total\{[^}]*name="([^"]*)"', self.last))),
            "scrape_timers": len(set(re.findall(rb'oct_custom_timer_seconds_bucket\{[^}]*timer="([^"]*)"', self.last))),
        }


class RSSSampler(threading.Thread):
    """
    Samples a process's VmRSS every ``interval`` seconds: (monotonic, KiB).
    """

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            rss = rss_kib(self.pid)
            if rss is None:
                return
            self.samples.append((time.monotonic(), rss))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def between(self, start: float, end: float) -> list[int]:
        return [rss for t, rss in self.samples if start <= t <= end]

    def before(self, t: float) -> int | None:
        earlier = [rss for at, rss in self.samples if at <= t]
        return earlier[-1] if earlier else None


def smaps_rollup_kib(pid: int) -> dict[str, int] | None:
    """
    One process's memory from ``/proc/PID/smaps_rollup`` (KiB): ``rss``,
    ``pss`` (each shared page divided among the processes that map it) and
    ``uss`` (``Private_Clean + Private_Dirty``: what its end would free).
    """
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    fields: dict[str, int] = {}
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        parts = rest.split()
        if len(parts) == 2 and parts[1] == "kB":
            fields[name] = int(parts[0])
    if "Rss" not in fields:
        return None
    return {
        "rss": fields["Rss"],
        "pss": fields.get("Pss", 0),
        "uss": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def tree_memory(root: int) -> dict[str, int]:
    """
    The memory of a process and all its descendants, summed (KiB): ``rss``
    (which counts a page shared by two processes twice), ``pss`` (which
    does not), ``uss``, and ``procs``, how many processes; ``root_rss``,
    ``root_pss``, ``root_uss``: the root process's own; ``read_ms``: how
    long reading them took.
    """
    began = time.perf_counter()
    total = {"rss": 0, "pss": 0, "uss": 0, "procs": 0, "root_rss": 0, "root_pss": 0, "root_uss": 0}
    for pid in descendants(root):
        one = smaps_rollup_kib(pid)
        if one is None:
            continue
        for key, value in one.items():
            total[key] += value
            if pid == root:
                total["root_" + key] = value
        total["procs"] += 1
    total["read_ms"] = round((time.perf_counter() - began) * 1000)
    return total


def tree_jiffies(root: int) -> dict[int, int]:
    """User + system CPU jiffies of a process and each of its descendants."""
    out = {}
    for pid in descendants(root):
        jiffies = process_jiffies(pid)
        if jiffies is not None:
            out[pid] = jiffies
    return out


def tree_cores(before: tuple[float, dict[int, int]], after: tuple[float, dict[int, int]]) -> float:
    """
    The cores a process tree used between two :func:`tree_jiffies` samples
    (a process born meanwhile counts from 0; one that ended meanwhile is
    not counted).
    """
    hz = os.sysconf("SC_CLK_TCK")
    used = sum(j - before[1].get(pid, 0) for pid, j in after[1].items())
    return used / hz / max(after[0] - before[0], 1e-9)


class TreeMemorySampler(threading.Thread):
    """
    Samples :func:`tree_memory` of a process tree every ``interval``
    seconds: (monotonic, {rss, pss, uss, procs}).
    """

    def __init__(self, pid: int, interval: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[tuple[float, dict[str, int]]] = []
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.is_set():
            if rss_kib(self.pid) is None:
                return
            self.samples.append((time.monotonic(), tree_memory(self.pid)))
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def between(self, start: float, end: float) -> list[dict[str, int]]:
        return [m for t, m in self.samples if start <= t <= end]

    def before(self, t: float) -> dict[str, int] | None:
        earlier = [m for at, m in self.samples if at <= t]
        return earlier[-1] if earlier else None


# --------------------------------------------------------------------------
# One turret run against the fake HQ
# --------------------------------------------------------------------------


def _read_lines(stream: Any, into: "queue.Queue[dict[str, Any] | None]") -> None:
    for line in stream:
        line = line.strip()
        if not line:
            continue
        try:
            into.put(json.loads(line))
        except ValueError:
            into.put({"event": "noise", "text": line.decode("utf-8", "replace")})
    into.put(None)


def tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


def turret_command(
    side: str, config: dict[str, Any], script: Path, run_dir: Path, twistd: Path | None = None
) -> list[str]:
    """
    Write the turret's files into ``run_dir`` and return its command:
    ours is ``twistd oct-turret -c config.json`` (``twistd``: another
    checkout's, for ``--baseline``); oct-turrets gets a turret
    package (``--tar``), its one working way in 0.2.8 (its ``--config-file``
    option crashes: the code reads ``args.config``).
    """
    config = dict(config, script=script.name)
    if side == "ours":
        (run_dir / script.name).write_text(script.read_text())
        (run_dir / "config.json").write_text(json.dumps(config, indent=1))
        return [str(twistd or TWISTD), "-n", "--pidfile=", "--logfile=-", "oct-turret", "-c", str(run_dir / "config.json")]
    package = run_dir / "turret.tar.gz"
    with tarfile.open(package, "w:gz") as tar:
        data = json.dumps(config, indent=1).encode()
        info = tarfile.TarInfo("config.json")
        info.size = len(data)
        info.mtime = int(time.time())
        tar.addfile(info, fileobj=__import__("io").BytesIO(data))
        tar.add(script, arcname=script.name)
    return [str(PEER_VENV / "bin" / "oct-turrets-start"), "--tar", str(package)]


@dataclass
class TurretSpec:
    """
    One turret of a run: what :func:`run_turrets` starts. ``side`` is
    ``"ours"`` or ``"peer"``; ``turret_extra`` are oct-turret options
    (``{run_dir}`` is replaced), ``twistd_extra`` twistd's; ``twistd``
    another checkout's (``--baseline``); with ``scrape`` (ours only) it
    serves ``--metrics`` on a free port, scraped every second during the
    window; ``end_turret`` ends it if it is still running after the HQ's
    ``kill``; ``cpus``: the cores it may run on (all: None).
    """

    side: str
    script: Path
    cannons: int
    rampup: float
    extra_config: dict[str, Any] | None = None
    twistd_extra: Iterable[str] = ()
    turret_extra: Iterable[str] = ()
    end_turret: Callable[[subprocess.Popen], str] | None = None
    twistd: Path | None = None
    sample_tree: bool = False
    scrape: bool = False
    turret_env: dict[str, str] | None = None
    cpus: frozenset[int] | None = None


@dataclass
class _Launched:
    """A started turret and what watches it during a run."""

    spec: TurretSpec
    run_dir: Path
    process: subprocess.Popen
    sampler: RSSSampler
    tree_sampler: TreeMemorySampler | None
    scraper: Scraper | None
    own: dict[str, tuple[float, int | None]] = field(default_factory=dict)
    trees: dict[str, tuple[float, dict[int, int]]] = field(default_factory=dict)
    died_at: float | None = None


#: The keywords of :func:`run_turret` that are the run's (the fake HQ's), not the turret's.
_RUN_KEYWORDS = frozenset({"warmup", "window", "mode", "tag", "expect", "sink_extra"})


def run_turret(*, run_dir: Path, **kw: Any) -> dict[str, Any]:
    """
    One run: the fake HQ, then the turret; the HQ starts it, counts its
    results for ``window`` s after ``warmup`` s, stops and kills it.
    ``kw`` holds :func:`run_turrets`' keywords (``warmup``, ``window``,
    ``mode``...) and the fields of :class:`TurretSpec` (``side``,
    ``script``, ``cannons``, ``rampup``...; with ``scrape``, ours only,
    the turret serves ``--metrics`` on a free port and a :class:`Scraper`
    gets ``/metrics`` every second during the window: ``scrapes``,
    ``scrape_failures``, ``scrape_ms_*``).

    :return: the HQ's result plus ``rss`` figures, ``cpu`` (machine, ours,
        others during the window), the cores used in the window by the
        turret's process tree (``turret_cores``: the turret and its worker
        processes, if any; ``turret_procs`` of them) and by the fake HQ
        (``sink_cores``), how the turret ended, and ``crashed`` with the
        tail of its log if it died on its own. With ``sample_tree``, also
        ``tree_kib``: the RSS, PSS and USS summed over the turret's process
        tree (sampled every second), before ``start`` (``ready``: the
        processes there were then, maybe before the workers were spawned)
        and the highest in the window (each sum on its own).
    """
    spec = TurretSpec(**{key: value for key, value in kw.items() if key not in _RUN_KEYWORDS})
    run = {key: value for key, value in kw.items() if key in _RUN_KEYWORDS}
    return run_turrets([spec], run_dir=run_dir, **run)[0]


def run_turrets(
    specs: list[TurretSpec],
    *,
    warmup: float,
    window: float,
    run_dir: Path,
    mode: str = "count",
    tag: str | None = None,
    expect: int = 0,
    sink_extra: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """
    :func:`run_turret` for one turret or more side by side: one fake HQ
    (``hq_sink.py --turrets N``) starts them all with one ``start``
    order, once each has answered, and counts each one's results in the
    same window; so two turrets compared side by side share every moment
    of the host's speed. Each turret runs in ``run_dir/turret-<i>`` when
    there are several. :return: a result per turret, as :func:`run_turret`
    gives, each with the HQ's figures of that turret (``rate``,
    ``results``, ``errors``, ``error_rate``).
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    several = len(specs) > 1
    sink_argv = [
        str(PEER_PY), str(BENCH / "hq_sink.py"),
        "--warmup", str(warmup), "--window", str(window), "--mode", mode,
        "--expect", str(expect), *sink_extra,
    ]
    if several:
        sink_argv += ["--turrets", str(len(specs))]
    if tag:
        sink_argv += ["--tag", tag]
    sink = spawn(sink_argv, stdout=subprocess.PIPE, log_path=run_dir / "sink.err")
    events: "queue.Queue[dict[str, Any] | None]" = queue.Queue()
    threading.Thread(target=_read_lines, args=(sink.stdout, events), daemon=True).start()
    first = events.get(timeout=30)
    if not first or first.get("event") != "ports":
        end_process(sink)
        raise RuntimeError(f"the fake HQ did not start: {first!r} {tail(run_dir / 'sink.err')}")
    pull_ports = first["pull"] if several else [first["pull"]]
    launched = [_launch(spec, run_dir / f"turret-{i}" if several else run_dir, first["pub"], port)
                for i, (spec, port) in enumerate(zip(specs, pull_ports))]
    seen: dict[str, float] = {}
    cpu: dict[str, tuple[float, int, int]] = {}
    sink_cpu_at: dict[str, tuple[float, int | None]] = {}
    result: dict[str, Any] | None = None
    limit = time.monotonic() + 60 + 60 + warmup + window + 30
    while result is None:
        try:
            event = events.get(timeout=0.2)
        except queue.Empty:
            event = {}
        if event is None:
            break
        name = event.get("event")
        if name:
            seen[name] = event.get("t", time.monotonic())
        for one in launched:
            if one.scraper is not None and name == "window_start":
                one.scraper.begin()
            if one.scraper is not None and name == "window_end":
                one.scraper.stop()
        if name in ("window_start", "window_end"):
            cpu[name] = cpu_snapshot()
            for one in launched:
                one.own[name] = (time.monotonic(), process_jiffies(one.process.pid))
                one.trees[name] = (time.monotonic(), tree_jiffies(one.process.pid))
            sink_cpu_at[name] = (time.monotonic(), process_jiffies(sink.pid))
        if name == "result":
            result = event
            break
        now = time.monotonic()
        for one in launched:
            if one.process.poll() is not None and one.died_at is None:
                one.died_at = now
        if all(one.died_at is not None and now - one.died_at > 3 for one in launched):
            break  # the turrets are gone and the HQ has nothing more to say
        if now > limit:
            log("run over its time limit: ending it")
            break
    for one in launched:
        one.sampler.stop()
        if one.tree_sampler is not None:
            one.tree_sampler.stop()
        if one.scraper is not None:
            one.scraper.stop()
    if result is None:
        end_process(sink, grace=3)
        if any(one.died_at is not None for one in launched):
            codes = ", ".join(str(one.process.returncode) for one in launched if one.died_at is not None)
            result = {"ok": False, "why": f"the turret exited ({codes}) before the run ended"}
        else:
            result = {"ok": False, "why": "no result from the fake HQ"}
    else:
        try:
            sink.wait(10)
        except subprocess.TimeoutExpired:
            end_process(sink)
    result.pop("event", None)
    each = result.pop("turrets", None) or [{}] * len(launched)
    results = []
    for one, own_figures in zip(launched, each):
        results.append(_finish(one, {**result, **own_figures}, seen, cpu, sink_cpu_at, sink.pid))
    forget_finished()
    return results


def _launch(spec: TurretSpec, run_dir: Path, pub: int, pull: int) -> _Launched:
    """Write one turret's files, start it against the fake HQ's ports, and watch it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    config = {
        "name": f"bench-{run_dir.name}",
        "cannons": spec.cannons,
        "rampup": spec.rampup,
        "hq_address": "127.0.0.1",
        "hq_publisher": pub,
        "hq_rc": pull,
        **(spec.extra_config or {}),
    }
    argv = turret_command(spec.side, config, spec.script, run_dir, spec.twistd)
    argv[1:1] = list(spec.twistd_extra) if spec.side == "ours" else []
    if spec.side == "ours":
        # oct-turret options, e.g. --results {run_dir}/results.csv
        argv += [arg.format(run_dir=run_dir) for arg in spec.turret_extra]
    scraper: Scraper | None = None
    if spec.scrape and spec.side == "ours":
        metrics_port = free_port()
        argv += ["--metrics", str(metrics_port)]
        scraper = Scraper(f"http://127.0.0.1:{metrics_port}/metrics")
        scraper.start()
    env = dict(os.environ, TMPDIR=str(run_dir), PYTHONUNBUFFERED="1", **(spec.turret_env or {}))
    process = spawn(argv, log_path=run_dir / "turret.log", cwd=str(run_dir), env=env)
    if spec.cpus is not None:
        os.sched_setaffinity(process.pid, spec.cpus)
    sampler = RSSSampler(process.pid)
    sampler.start()
    tree_sampler = TreeMemorySampler(process.pid) if spec.sample_tree else None
    if tree_sampler is not None:
        tree_sampler.start()
    return _Launched(spec, run_dir, process, sampler, tree_sampler, scraper)


def _finish(one: _Launched, result: dict[str, Any], seen: dict[str, float], cpu: dict[str, tuple[float, int, int]],
            sink_cpu_at: dict[str, tuple[float, int | None]], sink_pid: int) -> dict[str, Any]:
    """One turret's result: ends it if need be, and adds what was watched."""
    turret = one.process
    if turret.poll() is None and one.spec.end_turret is not None:
        ended = one.spec.end_turret(turret)
    elif turret.poll() is None:
        try:
            turret.wait(15)
            ended = f"exited {turret.returncode}"
        except subprocess.TimeoutExpired:
            ended = "did not exit after kill: " + end_process(turret)
    else:
        ended = f"exited {turret.returncode}"
    result["turret_ended"] = ended
    if one.scraper is not None:
        result.update(one.scraper.figures())
    if one.died_at is not None and not result.get("ok"):
        result["crashed"] = True
        result["crash_log"] = tail(one.run_dir / "turret.log")
    if "window_start" in cpu and "window_end" in cpu:
        result["cpu"] = other_cpu(cpu["window_start"], cpu["window_end"])
        result.update(process_cpu(turret.pid, one.own["window_start"], one.own["window_end"], result.get("rate")))
        tree0, tree1 = one.trees["window_start"], one.trees["window_end"]
        result["turret_cores"] = tree_cores(tree0, tree1)
        result["turret_procs"] = len(tree1[1])
        sink_cpu = process_cpu(sink_pid, sink_cpu_at["window_start"], sink_cpu_at["window_end"], None)
        if sink_cpu:
            result["sink_cores"] = sink_cpu["process_cores"]
    start = seen.get("window_start")
    end = seen.get("window_end")
    sampler = one.sampler
    baseline = sampler.before(seen["running"]) if "running" in seen else None
    in_window = sampler.between(start, end) if start and end else []
    result["rss_kib"] = {
        "ready": baseline,
        "window_max": max(in_window) if in_window else None,
        "max": max((rss for _, rss in sampler.samples), default=None),
    }
    if one.tree_sampler is not None:
        trees = one.tree_sampler
        window_trees = trees.between(start, end) if start and end else []
        result["tree_kib"] = {
            "ready": trees.before(seen["running"]) if "running" in seen else None,
            "window_max": {key: max(m[key] for m in window_trees) for key in window_trees[0]}
            if window_trees else None,
            "samples": len(window_trees),
        }
    return result


# --------------------------------------------------------------------------
# Locust
# --------------------------------------------------------------------------


def run_locust(*, locustfile: Path, users: int, host: str, warmup: float, window: float, run_dir: Path) -> dict[str, Any]:
    """
    One headless Locust run in one process for ``warmup + window`` seconds.
    Requests/s comes from its CSV: the slope of the aggregated request count
    in ``_stats_history.csv`` over the rows after the warm-up (least
    squares, so the whole-second timestamps average out); the whole run's
    aggregated ``Requests/s`` from ``_stats.csv`` is kept for comparison.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    prefix = run_dir / "locust"
    duration = int(round(warmup + window))
    argv = [
        str(PEER_VENV / "bin" / "locust"), "-f", str(locustfile), "--headless",
        "-u", str(users), "-r", str(users), "-t", f"{duration}s",
        "--host", host.rstrip("/"), "--csv", str(prefix), "--only-summary",
        "--exit-code-on-error", "0", "--loglevel", "WARNING",
    ]
    began = time.monotonic()
    process = spawn(argv, log_path=run_dir / "locust.log", cwd=str(run_dir))
    before = after = None
    own_before = own_after = (0.0, None)
    if _wait_or_exit(process, began + warmup):
        before = cpu_snapshot()
        own_before = (time.monotonic(), process_jiffies(process.pid))
        if _wait_or_exit(process, began + warmup + window - 0.5):
            after = cpu_snapshot()
            own_after = (time.monotonic(), process_jiffies(process.pid))
    try:
        process.wait(duration + 30)
    except subprocess.TimeoutExpired:
        end_process(process)
    forget_finished()
    result: dict[str, Any] = {"ok": process.returncode == 0, "turret_ended": f"exited {process.returncode}"}
    if before and after:
        result["cpu"] = other_cpu(before, after)
    rows = _csv_rows(Path(f"{prefix}_stats_history.csv"))
    points = [
        (float(r["Timestamp"]), float(r["Total Request Count"]), float(r.get("Total Failure Count") or 0))
        for r in rows
        if r.get("Name") == "Aggregated" and r.get("Total Request Count") not in (None, "", "N/A")
    ]
    if points:
        t0 = points[0][0]
        steady = [p for p in points if p[0] >= t0 + warmup]
        if len(steady) >= 3:
            result["rate"] = _slope([(t, n) for t, n, _ in steady])
            result["error_rate"] = _slope([(t, f) for t, _, f in steady])
            result["window"] = steady[-1][0] - steady[0][0]
    totals = [r for r in _csv_rows(Path(f"{prefix}_stats.csv")) if r.get("Name") == "Aggregated"]
    if totals:
        result["whole_run_rate"] = float(totals[0]["Requests/s"])
        result["requests"] = int(totals[0]["Request Count"])
        result["failures"] = int(totals[0]["Failure Count"])
    if "rate" not in result:
        result["ok"] = False
        result["why"] = "no stats history from Locust: " + tail(run_dir / "locust.log", 5)
    else:
        result.update(process_cpu(process.pid, own_before, own_after, result["rate"]))
    return result


def _wait_or_exit(process: subprocess.Popen, until: float) -> bool:
    while time.monotonic() < until:
        if process.poll() is not None:
            return False
        time.sleep(0.05)
    return True


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


def _slope(points: list[tuple[float, float]]) -> float:
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    sxy = sum((x - mx) * (y - my) for x, y in points)
    return sxy / sxx if sxx else 0.0


def with_scheduled(run: Callable[[Path], dict[str, Any]], cannons: int, wait: float = 2.0) -> Callable[[Path], dict[str, Any]]:
    """
    ``run`` of ``cannons`` cannons that each wait ``wait`` seconds per
    transaction, its result with ``scheduled`` (results/s the schedule
    asks for) and ``pct_of_scheduled`` (the rate measured, as a share of it).
    """
    scheduled = cannons / wait

    def measured(run_dir: Path) -> dict[str, Any]:
        result = run(run_dir)
        result["scheduled"] = scheduled
        result["pct_of_scheduled"] = 100.0 * result.get("rate", 0.0) / scheduled
        return result

    return measured
