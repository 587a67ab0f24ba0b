"""
Lighthouse scores for the code, policy and search pages, on mobile and desktop.

Install Lighthouse once (pinned in bench/package.json), then run:

    npm ci --ignore-scripts --no-audit --no-fund --prefix bench
    .venv/bin/python bench/lighthouse.py [--url http://127.0.0.1:8001] [--reports DIR]

Without --url it builds a throw-away site the way `make run` serves the real one: a
temporary SQLite database with the sample data, static files collected into a
temporary directory, and gunicorn with DEBUG off (static files through WhiteNoise) on
a free port of 127.0.0.1. The server is stopped at the end, whatever happens.

Lighthouse runs Debian's Chromium (CHROME_PATH, /usr/bin/chromium by default) once
per page and form factor, and the script prints the four category scores (0-100) of
each run, then every audit that keeps a category below 100, with the nodes or the
reason it failed. Low scores still exit 0: this is a benchmark, not a test. The exit
status is 1 when a Lighthouse run failed and 2 when the site or the tools could not
be set up.
"""

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
BENCH_DIR = BASE_DIR / "bench"
LIGHTHOUSE = BENCH_DIR / "node_modules" / ".bin" / "lighthouse"
INSTALL = "npm ci --ignore-scripts --no-audit --no-fund --prefix bench"

PAGES = [
    "/codes/cpt/97546/",
    "/policies/aetna/0198/",
    "/search/?q=work+hardening",
]
FORM_FACTORS = ["mobile", "desktop"]
CATEGORIES = ["performance", "accessibility", "best-practices", "seo"]
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Audits that cannot fail: shown in the report for information or for a human check.
NOT_SCORED = {"informative", "manual", "notApplicable"}
# A metric's own details are empty; these informative audits say what caused it.
CAUSES = {
    "total-blocking-time": "long-tasks",
    "largest-contentful-paint": "largest-contentful-paint-element",
    "cumulative-layout-shift": "layout-shifts",
}
LIGHTHOUSE_TIMEOUT = 300
SERVER_START_TIMEOUT = 30
MAX_ITEMS = 6
MAX_LINE = 220


class SetupError(Exception):
    """The site or the tools could not be set up; the message says what to do."""


@dataclass
class Run:
    page: str
    form_factor: str
    report: dict | None = None
    error: str = ""


def main() -> int:
    args = parse_args()
    # Without this, SIGTERM would end the process before the `finally` blocks
    # that stop gunicorn and Chromium.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    try:
        versions = tool_versions(args.chrome)
        with tempfile.TemporaryDirectory(prefix="carecodes-lighthouse-") as tmp:
            reports = Path(args.reports or tmp)
            reports.mkdir(parents=True, exist_ok=True)
            with site(args.url, Path(tmp)) as base_url:
                runs = run_all(base_url, args.chrome, reports)
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    print_summary(base_url, versions, runs)
    return 1 if any(run.error for run in runs) else 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.strip().split("\n\n")[0])
    parser.add_argument(
        "--url",
        help="test this running site (for example http://127.0.0.1:8001) "
        "instead of building a throw-away one",
    )
    parser.add_argument(
        "--chrome",
        default=os.environ.get("CHROME_PATH", "/usr/bin/chromium"),
        help="the Chromium binary Lighthouse drives (default: $CHROME_PATH or "
        "/usr/bin/chromium)",
    )
    parser.add_argument(
        "--reports",
        help="keep the Lighthouse JSON reports in this directory "
        "(default: a temporary directory, removed at the end)",
    )
    return parser.parse_args()


def tool_versions(chrome: str) -> dict[str, str]:
    if not LIGHTHOUSE.exists():
        raise SetupError(
            f"Lighthouse is not installed in {LIGHTHOUSE.parent.parent}. "
            f"Install it from the project root with:\n    {INSTALL}"
        )
    return {
        "Lighthouse": command_output([str(LIGHTHOUSE), "--version"]),
        "Chromium": command_output([chrome, "--version"]),
    }


def command_output(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise SetupError(f"{command[0]} did not run: {error}") from None
    if done.returncode != 0:
        raise SetupError(f"{' '.join(command)} failed:\n{done.stderr.strip()}")
    return done.stdout.strip()


@contextmanager
def site(url: str | None, tmp: Path):
    if url:
        wait_until_up(url.rstrip("/"), server=None)
        yield url.rstrip("/")
        return
    env = site_environment(tmp)
    build_site(env)
    with gunicorn(env, tmp / "gunicorn.log") as base_url:
        yield base_url


def site_environment(tmp: Path) -> dict[str, str]:
    # The static files go to a directory of this run's own, so it neither writes
    # staticfiles/ in the checkout nor serves files someone else collected there.
    static_root = tmp / "static"
    (tmp / "lighthouse_settings.py").write_text(
        "from pathlib import Path\n"
        "from carecodes.settings import *  # noqa: F403\n"
        f"STATIC_ROOT = Path({str(static_root)!r})\n"
    )
    pythonpath = [str(tmp), str(BASE_DIR), os.environ.get("PYTHONPATH", "")]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "lighthouse_settings",
        "PYTHONPATH": os.pathsep.join(filter(None, pythonpath)),
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "DEBUG": "false",
        "HTTPS": "false",
        # A key of its own: the site is thrown away, and .secret_key may not exist.
        "SECRET_KEY": secrets.token_urlsafe(64),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
    }


def build_site(env: dict[str, str]) -> None:
    for command in (
        ["migrate", "--noinput"],
        ["load_sample_data"],
        ["collectstatic", "--noinput"],
    ):
        print(f"manage.py {' '.join(command)}", file=sys.stderr)
        done = subprocess.run(
            [sys.executable, "manage.py", *command, "--verbosity", "0"],
            cwd=BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            raise SetupError(f"manage.py {command[0]} failed:\n{output}")


@contextmanager
def gunicorn(env: dict[str, str], log_path: Path):
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    print(f"gunicorn on {base_url}", file=sys.stderr)
    command = [sys.executable, "-m", "gunicorn", "carecodes.wsgi", "--workers", "2"]
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [*command, "--bind", f"127.0.0.1:{port}"],
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_until_up(base_url, server, log_path)
        yield base_url
    finally:
        stop(server)


def free_port() -> int:
    # Port 0 lets the kernel choose one that nothing listens on; it is released
    # just before gunicorn binds it, a race too small to matter here.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_up(base_url: str, server=None, log_path: Path | None = None) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if server is not None and server.poll() is not None:
            raise SetupError(f"gunicorn exited:\n{log_path.read_text().strip()}")
        try:
            with urllib.request.urlopen(f"{base_url}/", timeout=5):
                return
        except (urllib.error.URLError, OSError) as error:
            if time.monotonic() > deadline:
                raise SetupError(f"{base_url}/ does not answer: {error}") from None
        time.sleep(0.2)


def stop(server: subprocess.Popen) -> None:
    # gunicorn runs in a session of its own: signal the whole group, so that no
    # worker outlives the master.
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


# Trace-recording failures that Lighthouse itself says to retry ("Please run
# Lighthouse again"); seen once here on the first page of a run.
TRANSIENT = {"NO_NAVSTART", "NO_FCP", "NO_TRACING_STARTED"}
RETRIES = 1


class TransientError(RuntimeError):
    """A Lighthouse run that failed for reasons of its own; worth one more try."""


def run_all(base_url: str, chrome: str, reports: Path) -> list[Run]:
    runs = []
    for page in PAGES:
        for form_factor in FORM_FACTORS:
            print(f"lighthouse {form_factor:7} {page}", file=sys.stderr)
            run = Run(page, form_factor)
            name = page.strip("/").replace("/", "_").replace("?", "_")
            output = reports / f"{name}.{form_factor}.json"
            for attempt in range(1 + RETRIES):
                try:
                    run.report = lighthouse(
                        base_url + page, form_factor, chrome, output
                    )
                    run.error = None
                    break
                except TransientError as error:
                    run.error = f"{error} (attempt {attempt + 1})"
                except RuntimeError as error:
                    run.error = str(error)
                    break
            runs.append(run)
    return runs


def lighthouse(url: str, form_factor: str, chrome: str, output: Path) -> dict:
    command = [
        str(LIGHTHOUSE),
        url,
        "--output=json",
        f"--output-path={output}",
        f"--only-categories={','.join(CATEGORIES)}",
        f"--chrome-flags={' '.join(CHROME_FLAGS)}",
    ]
    if form_factor == "desktop":
        command.append("--preset=desktop")
    output.unlink(missing_ok=True)
    returncode, log = run_interruptibly(command, {**os.environ, "CHROME_PATH": chrome})
    report = json.loads(output.read_text()) if output.exists() else None
    if report and report.get("runtimeError"):
        error = report["runtimeError"]
        kind = TransientError if error.get("code") in TRANSIENT else RuntimeError
        raise kind(f"{error.get('code')}: {error.get('message')}")
    if returncode != 0 or report is None:
        tail = "\n".join(log.strip().splitlines()[-15:])
        raise RuntimeError(f"lighthouse exited with status {returncode}:\n{tail}")
    return report


def run_interruptibly(command: list[str], env: dict[str, str]) -> tuple[int, str]:
    # Lighthouse starts Chromium in a process group of its own and closes it on
    # SIGINT; a SIGKILL would leave Chromium running. So an interrupted run gets
    # SIGINT first.
    process = subprocess.Popen(
        command,
        cwd=BENCH_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        log, _ = process.communicate(timeout=LIGHTHOUSE_TIMEOUT)
    except subprocess.TimeoutExpired:
        interrupt(process)
        raise RuntimeError(f"no report after {LIGHTHOUSE_TIMEOUT} s") from None
    except BaseException:
        interrupt(process)
        raise
    return process.returncode, log


def interrupt(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()


def print_summary(base_url: str, versions: dict[str, str], runs: list[Run]) -> None:
    print()
    for tool, version in versions.items():
        print(f"{tool}: {version}")
    print(f"Site: {base_url}")
    print()
    print_table(runs)
    for run in runs:
        print_problems(run)


def print_table(runs: list[Run]) -> None:
    header = f"{'page':28} {'form':8}" + "".join(f"{c:>15}" for c in CATEGORIES)
    print(header)
    print("-" * len(header))
    for run in runs:
        row = f"{run.page:28} {run.form_factor:8}"
        if run.error:
            print(f"{row} Lighthouse failed (see below)")
            continue
        categories = run.report["categories"]
        print(row + "".join(f"{score(categories[c]):>15}" for c in CATEGORIES))


def score(item: dict) -> str:
    value = item.get("score")
    return "-" if value is None else str(round(value * 100))


def print_problems(run: Run) -> None:
    title = f"{run.page} ({run.form_factor})"
    if run.error:
        print(f"\n== {title}: Lighthouse failed\n{indent(run.error, 3)}")
        return
    for warning in run.report.get("runWarnings", []):
        print(f"\n== {title}: warning: {one_line(warning)}")
    for category_id in CATEGORIES:
        category = run.report["categories"][category_id]
        if category.get("score") == 1:
            continue
        print(f"\n== {title}: {category['title']} {score(category)}")
        audits = run.report["audits"]
        for ref, audit in failing_audits(category, audits):
            print_audit(ref, audit, audits.get(CAUSES.get(audit["id"], "")))


def failing_audits(category: dict, audits: dict) -> list[tuple[dict, dict]]:
    failing = []
    for ref in category["auditRefs"]:
        audit = audits[ref["id"]]
        # The "hidden" group holds Lighthouse's newer insight audits, which repeat
        # the findings of the audits listed next to them.
        if ref.get("group") == "hidden" or audit["scoreDisplayMode"] in NOT_SCORED:
            continue
        if audit["scoreDisplayMode"] == "error" or (audit["score"] or 0) < 1:
            failing.append((ref, audit))
    # The audits that cost the score come first, the worst of them at the top.
    return sorted(failing, key=lambda pair: (-pair[0]["weight"], pair[1]["score"] or 0))


def print_audit(ref: dict, audit: dict, cause: dict | None) -> None:
    value = audit["score"]
    shown = "error" if value is None else f"{value:.2f}"
    weight = f"{ref['weight']:.3g}"
    line = f"  - {audit['id']}: {audit['title']} (score {shown}, weight {weight})"
    if audit.get("displayValue"):
        line += f": {audit['displayValue']}"
    print(line)
    for reason in (audit.get("errorMessage"), audit.get("explanation")):
        if reason:
            print(f"      {one_line(reason)}")
    lines = detail_lines(audit.get("details") or {})
    if cause:
        lines += [
            f"{cause['title']}: {line}"
            for line in detail_lines(cause.get("details") or {})
        ]
    for detail in lines[:MAX_ITEMS]:
        print(f"      {detail}")
    if len(lines) > MAX_ITEMS:
        print(f"      ... and {len(lines) - MAX_ITEMS} more")


def detail_lines(details: dict) -> list[str]:
    items = details.get("items") or []
    if details.get("type") == "list":
        # A list holds whole tables (the LCP element audit, for one).
        items = [row for table in items for row in (table.get("items") or [])]
    lines = [describe(item) for item in items if isinstance(item, dict)]
    return [line for line in lines if line]


def describe(item: dict) -> str:
    node = item.get("node")
    if isinstance(node, dict) and node.get("type") == "node":
        reason = node.get("explanation") or node.get("snippet") or ""
        return one_line(f"{node.get('selector', '')} -- {reason}")
    keys = ("description", "url", "source", "sourceLocation", "label", "issueType")
    parts = [text_of(item.get(key)) for key in keys]
    parts += [
        f"{key} {text_of(item[key])}"
        for key in ("directive", "severity")
        if key in item
    ]
    if item.get("duration"):
        parts.append(f"{round(item['duration'])} ms")
    if item.get("wastedMs"):
        parts.append(f"{round(item['wastedMs'])} ms to save")
    if item.get("wastedBytes"):
        parts.append(f"{round(item['wastedBytes'] / 1024)} KiB to save")
    sub_items = (item.get("subItems") or {}).get("items") or []
    parts += [describe(sub) for sub in sub_items[:2]]
    return one_line(" | ".join(dict.fromkeys(part for part in parts if part)))


def text_of(value) -> str:
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    kind = value.get("type")
    if kind == "node":
        return f"{value.get('selector', '')} {value.get('snippet', '')}".strip()
    if kind == "source-location":
        # Lighthouse counts lines from 0; editors count from 1.
        return f"{value.get('url')}:{value.get('line', 0) + 1}"
    return str(value.get("value") or value.get("text") or value.get("url") or "")


def one_line(text: str) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= MAX_LINE else text[: MAX_LINE - 3] + "..."


def indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
