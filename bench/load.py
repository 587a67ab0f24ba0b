"""
Load the public pages with wrk through gunicorn, as production serves them.

Run: .venv/bin/python bench/load.py [--sqlite PATH] [--postgres URL --redis URL]
     [--duration 10] [--connections 32] [--cache warm,cold] [--no-prepare] [--soak]

For each database it starts gunicorn (2 workers, as `make run` does) with production
settings: DEBUG off, a random SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, static files
collected and served by WhiteNoise. Then it drives `wrk -t2 -c32 -d10s --latency` at
each page in turn and prints requests a second, p50 and p99 latency, non-2xx
responses and socket errors, and each page's throughput as a ratio of WhiteNoise's
static CSS measured by the same server in the same run (the Python limit on this
machine), with the load average beside each row: the machine is shared, so compare
ratios across runs, and absolute numbers only within one.

- (a) SQLite, no Redis: the database `make run` built (db.sqlite3), or --sqlite;
- (b) PostgreSQL + Redis: --postgres (default DATABASE_URL when it names a PostgreSQL
  server) with --redis (default REDIS_URL); skipped when no server is named.

Each database is served twice: with the page cache warm (PAGE_CACHE=on, each page
fetched before it is measured) and cold (PAGE_CACHE=off: every request renders the
page). Before the page cache exists both measure the same thing.

The database is brought up to date first with `make run`'s steps (migrate, sample
data, code sets, similar lists: skipped in a second when already done), outside the
timing. --soak instead runs 60 s at 64 connections against the cached code page and
reports non-2xx responses and socket errors (the goal is none of either).

wrk is Debian's package: `make bench-tools` installs it.
"""

import argparse
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = sys.executable
POSTGRES_SCHEMES = ("postgres:", "postgresql:", "pgsql:")
PAGES = [
    ("CPT code page", "/codes/cpt/97546/"),
    ("ICD-10-CM code page", "/codes/icd-10-cm/E11.9/"),
    ("policy page", "/policies/aetna/0198/"),
    ("home page", "/"),
    ("search", "/search/?q=work+hardening"),
    ("suggest", "/search/suggest/?q=work+har"),
]
SOAK_PAGE = PAGES[0]
# Seconds a page's warm-up may take: a slower page is reported, not measured.
WARM_TIMEOUT = 60
# `make run`'s steps: each is skipped in about a second once done.
SETUP_COMMANDS = [
    ["migrate", "--noinput"],
    ["load_sample_data"],
    ["import_icd10cm"],
    ["import_icd10pcs"],
    ["import_lay_terms"],
    ["rebuild_similar_codes", "--missing"],
]
# wrk's done() hook writes one JSON line, so nothing depends on its text layout.
REPORT_SCRIPT = """
done = function(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50": %f, "p99": %f, "status": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "timeout": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(99) / 1e3, errors.status, errors.connect, errors.read,
    errors.write, errors.timeout))
end
"""


def main():
    args = parse_args()
    wrk = shutil.which("wrk")
    if wrk is None:
        sys.exit(
            "bench/load.py needs wrk: run `make bench-tools` as root "
            "(apt-get install wrk)."
        )
    databases = [("SQLite", sqlite_url(args.sqlite), "")]
    if args.postgres:
        if not args.redis:
            sys.exit("--postgres needs --redis (or REDIS_URL): production runs both.")
        databases.append(("PostgreSQL + Redis", args.postgres, args.redis))
    else:
        print("No PostgreSQL named (--postgres or DATABASE_URL): SQLite only.\n")
    if args.only:
        databases = [db for db in databases if db[0].lower().startswith(args.only)]

    with tempfile.TemporaryDirectory(prefix="carecodes-load-") as scratch:
        script = Path(scratch) / "report.lua"
        script.write_text(REPORT_SCRIPT)
        collectstatic()
        css = static_css_path()
        for label, database_url, redis_url in databases:
            if not args.no_prepare:
                prepare(database_url, redis_url)
            if args.soak:
                soak(wrk, script, args, label, database_url, redis_url)
                continue
            for cache in args.cache:
                with Server(args, database_url, redis_url, cache) as server:
                    print_table(wrk, script, args, server, label, cache, css)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sqlite",
        default=str(ROOT / "db.sqlite3"),
        help="a SQLite file or sqlite:// URL (default: the one `make run` built)",
    )
    default_postgres = os.environ.get("DATABASE_URL", "")
    parser.add_argument(
        "--postgres",
        default=default_postgres
        if default_postgres.startswith(POSTGRES_SCHEMES)
        else "",
        help="a PostgreSQL DATABASE_URL (default: DATABASE_URL when it is one)",
    )
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", ""))
    parser.add_argument(
        "--only", choices=["sqlite", "postgresql"], help="load one database only"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per page")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--port", type=int, default=0, help="default: a free port")
    parser.add_argument(
        "--cache",
        type=lambda value: value.split(","),
        default=["warm", "cold"],
        help="warm, cold or warm,cold (the default)",
    )
    parser.add_argument(
        "--no-prepare",
        action="store_true",
        help="skip `make run`'s steps: the databases are ready as they are",
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        help="60 s at 64 connections on the cached code page instead of the table",
    )
    args = parser.parse_args()
    if set(args.cache) - {"warm", "cold"}:
        parser.error("--cache takes warm, cold or warm,cold")
    return args


def is_postgres(url: str) -> bool:
    return url.startswith(POSTGRES_SCHEMES)


def sqlite_url(path_or_url: str) -> str:
    if path_or_url.startswith("sqlite:"):
        return path_or_url
    return f"sqlite:///{Path(path_or_url).resolve()}"


def manage(*arguments, env=None):
    subprocess.run(
        [PYTHON, "manage.py", *arguments, "--verbosity", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )


def site_env(database_url: str, redis_url: str, **extra) -> dict:
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": SECRET_KEY,
        "ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        # Its own cache keys: other people's servers may share the Redis database.
        "CACHE_KEY_PREFIX": f"bench-load-{os.getpid()}",
        **extra,
    }
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
    return env


SECRET_KEY = secrets.token_urlsafe(64)


def collectstatic():
    manage("collectstatic", "--noinput", env=site_env(sqlite_url(":memory:"), ""))


def static_css_path() -> str:
    """The hashed address WhiteNoise serves the site's stylesheet at."""
    manifest = json.loads((ROOT / "staticfiles" / "staticfiles.json").read_text())
    return "/static/" + manifest["paths"]["css/site.css"]


def prepare(database_url: str, redis_url: str):
    started = time.perf_counter()
    print(f"Preparing {redact(database_url)} (`make run`'s steps, not timed)…")
    env = site_env(database_url, redis_url)
    for command in SETUP_COMMANDS:
        manage(*command, env=env)
    print(f"  ready in {time.perf_counter() - started:.0f} s\n")


def redact(url: str) -> str:
    """The URL without a password, for printing."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        return f"{scheme}{sep}{credentials.split(':')[0]}@{host}"
    return url


class Server:
    """gunicorn serving the site, started on entry and stopped on exit."""

    def __init__(self, args, database_url, redis_url, cache):
        self.port = args.port or free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.command = [
            PYTHON,
            "-m",
            "gunicorn",
            "carecodes.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(args.workers),
            "--log-level",
            "warning",
            # Other servers on the machine may hold the default control socket.
            "--no-control-socket",
        ]
        page_cache = "on" if cache == "warm" else "off"
        self.env = site_env(database_url, redis_url, PAGE_CACHE=page_cache)

    def __enter__(self):
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, start_new_session=True
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                sys.exit(f"gunicorn stopped at start (exit {self.process.returncode}).")
            try:
                self.get("/robots.txt")
                return self
            except (OSError, urllib.error.URLError):
                time.sleep(0.2)
        self.__exit__()
        sys.exit("gunicorn did not answer within 30 s.")

    def __exit__(self, *exc):
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            # A worker still busy with a slow request past gunicorn's grace period.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def get(self, path: str, timeout: float = 10) -> int:
        with urllib.request.urlopen(self.base + path, timeout=timeout) as response:
            response.read()
            return response.status

    def warm(self, path: str) -> str:
        """
        Requests enough for every worker to have loaded its templates (and, with the
        page cache on, for the page to be stored); what went wrong, or "".
        """
        deadline = time.monotonic() + WARM_TIMEOUT
        try:
            for _ in range(10):
                self.get(path, timeout=max(deadline - time.monotonic(), 0.1))
        except urllib.error.HTTPError as error:
            return f"answered {error.code}, not 200: is the database ready?"
        except OSError:
            return f"no answer within {WARM_TIMEOUT} s: not measured"
        return ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run_wrk(wrk, script, url, *, threads, connections, duration) -> dict:
    result = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout.strip().splitlines()[-1])
    report["rate"] = report["requests"] / report["seconds"]
    report["sockets"] = sum(report[kind] for kind in ("connect", "read", "write"))
    report["sockets"] += report["timeout"]
    return report


def print_table(wrk, script, args, server, label, cache, css):
    print(
        f"{label}, page cache {cache}: wrk -t{args.threads} -c{args.connections} "
        f"-d{args.duration}s, gunicorn {args.workers} workers, {os.cpu_count()} cores"
    )
    print(
        f"{'page':22} {'address':28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
        f"{'non-2xx':>7} {'sockerr':>7} {'x static':>8} {'load':>5}"
    )
    static = None
    for name, path in [("WhiteNoise static CSS", css), *PAGES]:
        shown = path if len(path) <= 28 else path[:27] + "…"
        if problem := server.warm(path):
            print(f"{name:22} {shown:28} {problem}", flush=True)
            continue
        report = run_wrk(
            wrk,
            script,
            server.base + path,
            threads=args.threads,
            connections=args.connections,
            duration=args.duration,
        )
        static = static or report["rate"]
        print(
            f"{name:22} {shown:28} {report['rate']:8.0f} {report['p50']:7.1f} "
            f"{report['p99']:7.1f} {report['status']:7d} {report['sockets']:7d} "
            f"{report['rate'] / static:8.2f} {os.getloadavg()[0]:5.1f}",
            flush=True,
        )
    print()


def soak(wrk, script, args, label, database_url, redis_url):
    name, path = SOAK_PAGE
    with Server(args, database_url, redis_url, "warm") as server:
        if problem := server.warm(path):
            sys.exit(f"{label}, soak: {path} {problem}")
        report = run_wrk(
            wrk, script, server.base + path, threads=2, connections=64, duration=60
        )
    verdict = "ok" if report["status"] == 0 and report["sockets"] == 0 else "FAILED"
    print(
        f"{label}, soak: {name} {path}, 60 s at 64 connections, page cache warm: "
        f"{report['requests']} requests, {report['rate']:.0f} req/s, p99 "
        f"{report['p99']:.1f} ms, {report['status']} non-2xx, {report['sockets']} "
        f"socket errors (connect {report['connect']}, read {report['read']}, write "
        f"{report['write']}, timeout {report['timeout']}); load average "
        f"{os.getloadavg()[0]:.1f}: {verdict}\n"
    )


if __name__ == "__main__":
    main()
