"""
Two app servers, one truth: what staff change through one server, every visitor of
any other server reads at once.

Two gunicorn servers (2 workers each, production settings) share one database and
one cache, as behind a load balancer: on PostgreSQL the suite's test database and
Redis (``REDIS_URL``, else a local Redis if one answers); on SQLite a database file
and no Redis, each process with its own local-memory cache, as ``make run`` serves.
Staff sign in to server A and work through the admin's forms over HTTP; visitors
read server B. Only HTTP crosses into the servers, so the test holds whatever cache
the site keeps, and fails if any of it serves a page older than the last edit.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from pathlib import Path

import pytest
import redis
from django.db import connection
from lxml import html

from .admin_forms import messages

# On PostgreSQL the servers use the suite's test database, and must read committed
# rows. (The mark, not a fixture asked for at run time: pytest-django creates the test
# databases only for the tests that say, before they run, that they need one.)
pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parent.parent
# The gunicorn of the Python running the tests, whatever virtualenv that is.
GUNICORN = Path(sys.executable).with_name("gunicorn")
LOCAL_REDIS = "redis://127.0.0.1:6379/7"
PASSWORD = "a long passphrase"
START_TIMEOUT = 60

WRITE_UP = "/codes/cpt/97546/"
# A code of the sample policy (Aetna 0198, by a range) that the bulletin imported below
# names too, and one the site does not know until that bulletin names it.
KNOWN_CODE = "/codes/icd-10-cm/S52.501A/"
NEW_CODE = "/codes/hcpcs/E0760/"
POLICY_CODES = ["/codes/cpt/97545/", KNOWN_CODE]
BULLETIN = ROOT / "tests" / "data" / "policy-harbor-0712-bone-growth-stimulation.txt"
BULLETIN_TITLE = "0712: Bone Growth Stimulators"
NEW_POLICY = "/policies/harbor-health-plan/0712/"

CHANGELIST = "/admin/procedures/procedure/"
CHANGE_FORM = "//form[contains(@id, '_form')]"
POLICY_IMPORT = "/admin/policies/policy/import/"

# Run in the site's own code (``migrate`` set first): the sample data, and Dana, who
# writes, reviews and publishes (the three editorial roles; an import of a new policy
# needs an author's right to add one).
SETUP = f"""
from django.contrib.auth.models import Group, User
from django.core.management import call_command

if migrate:
    call_command("migrate", interactive=False, verbosity=0)
call_command("load_sample_data", verbosity=0, seeds_only=True)
dana = User.objects.create_user("dana", password={PASSWORD!r}, is_staff=True)
dana.groups.set(
    Group.objects.filter(name__in=["Author", "Clinical reviewer", "Publisher"])
)
"""
# What the servers must not inherit from the shell that runs the tests.
NOT_INHERITED = {
    "DATABASE_URL",
    "REDIS_URL",
    "CACHE_KEY_PREFIX",
    "DEBUG",
    "HTTPS",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "ALLOWED_HOSTS",
    "DJANGO_SETTINGS_MODULE",
    "PAGE_CACHE",
}


# The shared database and cache ----------


@pytest.fixture
def secret_key():
    """One key for every server: sessions, CSRF and messages cross between them."""
    return secrets.token_urlsafe(64)


@pytest.fixture
def shared_cache():
    """The environment that gives the servers one cache, and its keys removed after.

    On SQLite none: each process keeps a local-memory cache, as ``make run`` does.
    """
    prefix = f"twoservers-{uuid.uuid4().hex}"
    if connection.vendor == "sqlite":
        yield {"CACHE_KEY_PREFIX": prefix}
        return
    url = os.environ.get("REDIS_URL") or LOCAL_REDIS
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.ConnectionError:
        if "REDIS_URL" in os.environ:
            pytest.fail(f"REDIS_URL is set to {url}, and no Redis answers there.")
        # No Redis on this machine: the servers keep local-memory caches.
        yield {"CACHE_KEY_PREFIX": prefix}
        return
    yield {"REDIS_URL": url, "CACHE_KEY_PREFIX": prefix}
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)


@pytest.fixture
def shared_database(tmp_path):
    """A DATABASE_URL for the servers, filled by ``fill``.

    PostgreSQL: the suite's test database, emptied after the test. SQLite: the
    suite's database lives in memory, out of other processes' reach, so the servers
    get a file.
    """
    if connection.vendor == "sqlite":
        return f"sqlite:///{tmp_path / 'site.sqlite3'}"
    return database_url(connection.settings_dict)


def fill(database_url: str, secret_key: str):
    """The sample data and Dana, written by the site's own code in one process (a
    new SQLite file is migrated first)."""
    migrate = database_url.startswith("sqlite:")
    manage(database_url, secret_key, "shell", "-c", f"migrate = {migrate}\n{SETUP}")


def database_url(settings: dict) -> str:
    user = urllib.parse.quote(settings["USER"] or "", safe="")
    password = urllib.parse.quote(settings["PASSWORD"] or "", safe="")
    login = f"{user}:{password}@" if password else f"{user}@" if user else ""
    port = f":{settings['PORT']}" if settings["PORT"] else ""
    return f"postgres://{login}{settings['HOST']}{port}/{settings['NAME']}"


def server_env(database_url: str, secret_key: str, **more) -> dict[str, str]:
    """Production settings (DEBUG off), read from the environment as on a host."""
    env = {
        name: value for name, value in os.environ.items() if name not in NOT_INHERITED
    }
    env.update(
        DJANGO_SETTINGS_MODULE="tests.two_servers_settings",
        DEBUG="false",
        SECRET_KEY=secret_key,
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=database_url,
        **more,
    )
    return env


def manage(database_url: str, secret_key: str, *args: str):
    """Runs manage.py with the servers' settings."""
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=server_env(database_url, secret_key),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, f"manage.py {args[0]} failed:\n{done.stderr}"


# The servers ----------


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(name: str, env: dict[str, str], log: Path) -> Server:
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(GUNICORN),
                "carecodes.wsgi",
                f"--bind=127.0.0.1:{port}",
                "--workers=2",
                "--access-logfile=-",
                # gunicorn's control socket has one path per user by default.
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    return Server(name, port, process, log)


def wait_until_listening(server: Server):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"Server {server.name} stopped at start:\n{server.output()}")
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    pytest.fail(
        f"Server {server.name} did not listen within {START_TIMEOUT} s:\n"
        f"{server.output()}"
    )


def stop(server: Server):
    # SIGQUIT: gunicorn's quick shutdown (SIGTERM lets workers finish for seconds).
    server.process.send_signal(signal.SIGQUIT)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
        server.process.wait()


@pytest.fixture
def servers(shared_database, shared_cache, secret_key, tmp_path):
    """Servers A and B, started side by side; always stopped, their logs printed
    (pytest shows them when the test fails)."""
    if not os.access(GUNICORN, os.X_OK):
        pytest.skip(
            f"NOT TESTED: two app servers need gunicorn at {GUNICORN}, and there is "
            "none: install the project (pip install -e .) in this virtualenv."
        )
    env = server_env(shared_database, secret_key, **shared_cache)
    started = []
    try:
        for name in "AB":
            started.append(start(name, env, tmp_path / f"gunicorn-{name}.log"))
        # While the servers boot (they touch the database only when asked a page).
        fill(shared_database, secret_key)
        for server in started:
            wait_until_listening(server)
        yield started
    finally:
        for server in started:
            stop(server)
        for server in started:
            print(f"--- server {server.name} ---\n{server.output()}", file=sys.stderr)


# HTTP, as a browser speaks it ----------


@dataclass
class Page:
    status: int
    url: str
    headers: object = field(repr=False)
    content: bytes = field(repr=False)

    def tree(self):
        return html.fromstring(self.content)

    def text(self) -> str:
        return " ".join(self.tree().text_content().split())

    def sets_cookies(self) -> list[str]:
        return self.headers.get_all("Set-Cookie") or []


class Browser:
    """A visitor of one server; with cookies, it can sign in and post forms."""

    def __init__(self, server: Server, cookies: bool = False):
        self.base = server.url
        # No proxy from the environment stands between the test and 127.0.0.1.
        handlers = [urllib.request.ProxyHandler({})]
        if cookies:
            handlers.append(urllib.request.HTTPCookieProcessor(CookieJar()))
        self.opener = urllib.request.build_opener(*handlers)

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: list[tuple[str, str]], files=None) -> Page:
        if files:
            body, content_type = multipart(fields, files)
        else:
            body = urllib.parse.urlencode(fields).encode()
            content_type = "application/x-www-form-urlencoded"
        request = urllib.request.Request(
            self.base + path, data=body, headers={"Content-Type": content_type}
        )
        return self._open(request)

    def _open(self, request) -> Page:
        try:
            with self.opener.open(request, timeout=START_TIMEOUT) as response:
                return Page(
                    response.status, response.url, response.headers, response.read()
                )
        except urllib.error.HTTPError as error:
            with error:
                return Page(error.code, error.url, error.headers, error.read())


def multipart(fields, files: dict[str, Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        f"{value}\r\n".encode()
        for name, value in fields
    ]
    parts += [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        f'filename="{path.name}"\r\nContent-Type: text/plain\r\n\r\n'.encode()
        + path.read_bytes()
        + b"\r\n"
        for name, path in files.items()
    ]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def form_fields(page: Page, which: str, **changes: str) -> list[tuple[str, str]]:
    """The fields of the page's form ``which`` (an XPath) as a browser posts them,
    with ``changes`` made."""
    assert page.status == 200, f"{page.url} answered {page.status}"
    form = page.tree().xpath(which)[0]
    textareas = set(form.xpath(".//textarea/@name"))
    fields = [
        # A browser drops the newline Django writes after <textarea>.
        (name, value.removeprefix("\n") if name in textareas else value)
        for name, value in form.form_values()
        if name not in changes
    ]
    return fields + list(changes.items())


def sign_in(staff: Browser, username: str):
    form = staff.get("/admin/login/?next=/admin/")
    page = staff.post(
        "/admin/login/",
        form_fields(
            form, "//form[@id='login-form']", username=username, password=PASSWORD
        ),
    )
    assert page.url.endswith("/admin/"), page.text()


def revise_and_publish(staff: Browser, code: str, name: str, addition: str):
    """Adds ``addition`` to the field ``name`` of a live write-up, approves the
    revision and publishes it, as staff do in the admin; returns the admin's
    messages."""
    found = staff.get(f"{CHANGELIST}?q={code}")
    change = found.tree().xpath("//table[@id='result_list']//th/a/@href")[0]
    pk = re.search(r"/(\d+)/change/", change)[1]
    form = staff.get(change)
    old = dict(form_fields(form, CHANGE_FORM))[name]
    saved = staff.post(
        change, form_fields(form, CHANGE_FORM, **{name: f"{old}\n\n{addition}"})
    )
    said = messages(saved)
    for action in ("approve", "publish"):
        done = staff.post(
            CHANGELIST,
            form_fields(
                staff.get(CHANGELIST),
                "//form[@id='changelist-form']",
                action=action,
                _selected_action=pk,
            ),
        )
        said += messages(done)
    return said


def import_bulletin(staff: Browser, path: Path) -> list[str]:
    """Uploads a bulletin, reads the preview and confirms it; returns the admin's
    messages."""
    upload = staff.get(POLICY_IMPORT)
    preview = staff.post(
        POLICY_IMPORT,
        form_fields(upload, "//form[@enctype='multipart/form-data']"),
        files={"document": path},
    )
    saved = staff.post(
        POLICY_IMPORT,
        form_fields(preview, "//form[.//*[@name='confirm']]", confirm="1"),
    )
    return messages(saved)


# The test ----------


def read(visitor: Browser, path: str, status: int = 200) -> Page:
    """A visitor's page, which sets no cookie (a shared cache could hand it on)."""
    page = visitor.get(path)
    assert page.status == status, f"{visitor.base}{path} answered {page.status}"
    assert not page.sets_cookies(), f"{visitor.base}{path} set a cookie for a visitor"
    return page


def test_an_edit_on_one_server_is_read_on_the_other_at_once(servers):
    a, b = servers
    on_a, on_b = Browser(a), Browser(b)
    # Both servers show every page twice, so a page cache would hold them, and the
    # pages that do not exist yet.
    for visitor in [on_a, on_b] * 2:
        for path in [WRITE_UP, *POLICY_CODES]:
            read(visitor, path)
        for path in [NEW_POLICY, NEW_CODE]:
            read(visitor, path, status=404)
    assert BULLETIN_TITLE not in read(on_b, KNOWN_CODE).text()

    dana = Browser(a, cookies=True)
    sign_in(dana, "dana")
    sentence = f"Checked on two servers, mark {uuid.uuid4().hex[:8]}."
    said = revise_and_publish(dana, "97546", "summary", sentence)
    assert "1 write-up published." in said, said
    assert sentence in read(on_b, WRITE_UP).text(), "B shows the old write-up"

    said = import_bulletin(dana, BULLETIN)
    assert any(BULLETIN_TITLE in text and ": created" in text for text in said), said
    for path in [KNOWN_CODE, NEW_CODE, NEW_POLICY]:
        assert BULLETIN_TITLE in read(on_b, path).text(), f"B's {path} misses it"
