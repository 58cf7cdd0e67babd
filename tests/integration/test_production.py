"""Production on one host, tested as processes against the local RabbitMQ and PostgreSQL:
`conduit db init`, the compose file's init/listeners/workers/ehr commands with its environment
(Docker does not run here, so its services run as plain processes, addresses pointed at the
local servers), one-line errors for a missing database and a refused RabbitMQ login, the
listen host from the environment, and /metrics from loopback."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN_URL
from tests.rabbit import RABBIT_URL, delete_channel_queues
from tests.support import free_port, wait_until, write_channel

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "examples" / "docker-compose.yml"
A01 = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|{id}|P|2.5\r"
       "PID|1||{id}^^^HOSP^MR||PROD^TEST||19800101|F\r")


def clean_env(**extra: str) -> dict[str, str]:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")}, **extra}


def conduit(*args: str, env: dict[str, str], cwd: Path | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conduit", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=cwd, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("{")]  # json log lines aside
    assert len(lines) == 1, result.stderr
    return lines[0]


@contextlib.contextmanager
def fresh_database_name() -> Iterator[str]:
    """A database name no one has; dropped afterwards if something created it."""
    name = f"conduit_prod_{uuid.uuid4().hex[:10]}"
    try:
        yield name
    finally:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def database_exists(name: str) -> bool:
    admin = create_engine(POSTGRES_ADMIN_URL)
    with admin.connect() as connection:
        found = connection.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                   {"n": name}).first()
    admin.dispose()
    return found is not None


def test_db_init_creates_the_database_tables_and_first_admin(tmp_path: Path) -> None:
    secret = tmp_path / "admin_password"
    secret.write_text("a long admin password\n")
    with fresh_database_name() as name:
        url = f"postgresql://postgres@127.0.0.1:5432/{name}"
        env = clean_env(CONDUIT_STORE_URL=url, CONDUIT_ADMIN_PASSWORD_FILE=str(secret))
        first = conduit("db", "init", "--admin", "admin", env=env)
        assert first.returncode == 0, first.stderr
        assert f"created database {url}" in first.stdout and "user admin added" in first.stdout
        assert database_exists(name)
        again = conduit("db", "init", "--admin", "admin", env=env)
        assert again.returncode == 0, again.stderr
        assert "created database" not in again.stdout and "exists already" in again.stdout
        assert "admin" in conduit("users", "list", env=env).stdout
    closed = free_port()
    line = one_line(conduit("db", "init", "--store-url",
                            f"postgresql://postgres@127.0.0.1:{closed}/x", env=clean_env()))
    assert f"port {closed}" in line and "refused" in line.lower()


def _channel(tmp_path: Path) -> Path:
    write_channel(tmp_path / "channels", {
        "name": f"prod{uuid.uuid4().hex[:8]}",
        "source": {"type": "mllp", "host": "127.0.0.1", "port": free_port()},
        "destinations": [{"name": "f", "type": "file",
                          "path": str(tmp_path / "out" / "{{ id }}")}]})
    return tmp_path / "channels"


def test_run_on_a_missing_database_is_one_line(tmp_path: Path) -> None:
    with fresh_database_name() as name:
        env = clean_env(CONDUIT_STORE_URL=f"postgresql://postgres@127.0.0.1:5432/{name}",
                        CONDUIT_DATA_DIR=str(tmp_path / "data"), CONDUIT_DASHBOARD_PORT="0")
        line = one_line(conduit("run", str(_channel(tmp_path)), env=env))
        assert f'database "{name}" does not exist' in line and "conduit db init" in line


def test_a_wrong_rabbitmq_password_is_reported_at_once(tmp_path: Path) -> None:
    wrong = RABBIT_URL.replace("guest:guest", "guest:not-the-password")
    env = clean_env(CONDUIT_BUS_URL=wrong, CONDUIT_DATA_DIR=str(tmp_path / "data"),
                    CONDUIT_DASHBOARD_PORT="0")
    began = time.monotonic()
    line = one_line(conduit("run", str(_channel(tmp_path)), "--role", "listeners", env=env))
    assert time.monotonic() - began < 15
    assert "refused the login: authentication failed" in line
    assert "not-the-password" not in line


def _outside_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
        except OSError:
            return None
        address = str(probe.getsockname()[0])
    return None if address.startswith("127.") else address


class Service:
    """One compose service's command as a process; its output kept for the assertions."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], cwd: Path) -> None:
        self.name = name
        self.output: list[str] = []
        self.process = subprocess.Popen([sys.executable, "-m", "conduit", *args], env=env,
                                        cwd=cwd, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "conduit: ready" in line:
                self._ready.set()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not self._ready.is_set():
            assert self.process.poll() is None, f"{self.name} exited:\n{''.join(self.output)}"
            assert time.monotonic() < deadline, f"{self.name} not ready:\n{''.join(self.output)}"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self._reader.join(5)
        assert self.process.stdout is not None
        self.process.stdout.close()


def _copy_channel(source: Path, target: Path, **change: Any) -> dict[str, Any]:
    """A shipped channel file with a name and ports of this test's own (the shared RabbitMQ
    and this machine's ports are other tests' too)."""
    channel = yaml.safe_load(source.read_text())
    for key, value in change.items():
        if key == "name":
            channel["name"] = value
        elif key == "port":
            channel["source"]["port"] = value
        elif key == "data":
            for destination in channel["destinations"]:
                if "path" in destination:
                    destination["path"] = destination["path"].replace("/data/", f"{value}/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(channel, sort_keys=False))
    return channel


def test_compose_services_run_as_processes_on_one_host(tmp_path: Path) -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    for name in ("rabbitmq", "postgres"):
        assert "healthcheck" in services[name], name
    assert any(p.endswith(":8080") for p in services["listeners"]["ports"]), "dashboard"
    assert compose["secrets"]["conduit_admin_password"] == {"environment":
                                                            "CONDUIT_ADMIN_PASSWORD"}
    tag = uuid.uuid4().hex[:8]
    app = tmp_path / "app"  # the image's WORKDIR: channel paths in the commands are under it
    ports = {"adt-ordered-feed": free_port(), "lab-results-by-patient": free_port()}
    names = {name: f"{name}-{tag}" for name in ports}
    for name in ports:
        _copy_channel(ROOT / "channels" / f"{name}.yaml", app / "channels" / f"{name}.yaml",
                      name=names[name], port=ports[name])
    ehr_port = free_port()
    ehr_data = tmp_path / "ehr-data"
    _copy_channel(ROOT / "examples" / "compose" / "ehr-stub.yaml",
                  app / "examples" / "compose" / "ehr-stub.yaml", port=ehr_port,
                  data=str(ehr_data))
    secret = tmp_path / "secrets" / "conduit_admin_password"
    secret.parent.mkdir()
    secret.write_text("a long admin password")
    dashboard = free_port()
    started: list[Service] = []
    with fresh_database_name() as database:
        store_url = f"postgresql://postgres@127.0.0.1:5432/{database}"
        local = {  # the compose network's names, pointed at this machine's servers
            "CONDUIT_STORE_URL": store_url,
            "CONDUIT_BUS_URL": RABBIT_URL,  # quorum queues, the default (as the compose file)
            "EHR_MLLP_HOST": "127.0.0.1", "EHR_MLLP_PORT": str(ehr_port),
            "CONDUIT_ADMIN_PASSWORD_FILE": str(secret),
            "CONDUIT_DASHBOARD_PORT": str(dashboard),
        }

        def environment(service: str) -> dict[str, str]:
            env = clean_env(**{k: str(v) for k, v in
                               services[service].get("environment", {}).items()})
            for key, value in local.items():
                if key in env:
                    env[key] = value
            if "CONDUIT_DATA_DIR" in env:
                env["CONDUIT_DATA_DIR"] = str(tmp_path / f"{service}-data")
            return env

        def command(service: str) -> list[str]:
            args = [str(a) for a in services[service]["command"]]
            return [str(app / a[len("/app/"):]) if a.startswith("/app/") else a for a in args]

        try:
            init = conduit(*command("init"), env=environment("init"), cwd=app)
            assert init.returncode == 0, init.stdout + init.stderr
            assert "user admin added as admin" in init.stdout
            ehr_env = environment("ehr")
            ehr_env["CONDUIT_DATA_DIR"] = str(ehr_data)
            for service, env in (("ehr", ehr_env), ("listeners", environment("listeners")),
                                 ("workers", environment("workers"))):
                started.append(Service(service, command(service), env, app))
                started[-1].wait_ready()
            _ehr, listeners, workers = started
            # one host: the listeners serve the dashboard, the workers do not bind its port
            assert f"dashboard http://127.0.0.1:{dashboard}/" in "".join(listeners.output)
            assert "conduit: dashboard http" not in "".join(workers.output)
            assert "conduit: no dashboard in a workers process" in "".join(workers.output)
            # CONDUIT_LISTEN_HOST=0.0.0.0: the sources listen on every address
            feed = names["adt-ordered-feed"]
            assert (f"channel {feed} listening on mllp://0.0.0.0:{ports['adt-ordered-feed']}"
                    in "".join(listeners.output))
            host = _outside_address() or "127.0.0.1"
            message = tmp_path / "a01.hl7"
            message.write_text(A01.format(id=f"P{tag}"))
            sent = conduit("send", f"{host}:{ports['adt-ordered-feed']}", str(message),
                           env=clean_env())
            assert sent.returncode == 0, sent.stdout + sent.stderr
            wait_until(lambda: (ehr_data / "ehr" / f"P{tag}.hl7").is_file(), timeout=30)
            # the first admin from the secret can log in; a token drives the running engine
            base = f"http://127.0.0.1:{dashboard}"
            with httpx.Client(base_url=base) as client:
                form = client.get("/login")
                csrf = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
                assert csrf is not None
                login = client.post("/login", data={
                    "username": "admin", "password": "a long admin password",
                    "csrf_token": csrf.group(1), "next": "/"})
                assert login.status_code == 303 and "conduit_session" in client.cookies
                # Prometheus on this machine reads /metrics without a token
                metrics = httpx.get(f"{base}/metrics")
                assert metrics.status_code == 200 and "conduit_messages_received_total" \
                    in metrics.text
            token = conduit("users", "token", "admin", env=clean_env(
                CONDUIT_STORE_URL=store_url)).stdout.strip()
            status = conduit("status", "--url", base, "--token", token, env=clean_env())
            assert status.returncode == 0 and f"{base}: ok" in status.stdout, status.stderr
        finally:
            for service in reversed(started):
                service.stop()
            for name in names.values():
                delete_channel_queues(name)


def test_the_readme_states_the_production_commands() -> None:
    """The README's production section carries the commands the compose file runs."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Production", 1)[1].split("\n## ", 1)[0]
    for needed in ("conduit db init", "--role listeners", "--role workers",
                   "CONDUIT_LISTEN_HOST", "CONDUIT_ADMIN_PASSWORD_FILE",
                   "conduit users token", "/metrics", "examples/docker-compose.yml"):
        assert needed in section, needed


def test_listen_host_from_the_environment_overrides_the_channel_file(tmp_path: Path) -> None:
    """The Dockerfile's channels say 127.0.0.1 (right on a laptop); CONDUIT_LISTEN_HOST=0.0.0.0
    (the image sets it) makes `docker run -p 2575:2575` reach them."""
    from tests.support import engine_process

    channels = _channel(tmp_path)  # source host 127.0.0.1 in the file
    channel = yaml.safe_load(next(channels.glob("*.yaml")).read_text())
    port = channel["source"]["port"]
    with engine_process(channels, tmp_path / "data",
                        env={"CONDUIT_LISTEN_HOST": "0.0.0.0"}) as engine:
        assert f"listening on mllp://0.0.0.0:{port}" in "".join(engine.output)
        outside = _outside_address()
        if outside is not None:
            with socket.create_connection((outside, port), timeout=5):
                pass


def test_reprocess_to_a_refusing_rabbitmq_is_one_line(tmp_path: Path) -> None:
    import asyncio

    from conduit.store import Store

    store = Store(f"sqlite:///{tmp_path / 'data' / 'conduit.db'}")
    store.migrate()

    async def write() -> None:
        await store.received("adt", A01.format(id="R1").encode(), control_id="R1",
                             message_type="ADT^A01")
        await store.close()

    asyncio.run(write())
    channels = _channel(tmp_path)
    wrong = RABBIT_URL.replace("guest:guest", "guest:not-the-password")
    result = conduit("reprocess", "1", "--from-raw", "--channels", str(channels), "--bus-url",
                     wrong, env=clean_env(CONDUIT_DATA_DIR=str(tmp_path / "data")))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines()
             if line.strip() and not line.startswith("conduit: store ")]
    assert len(lines) == 1, result.stderr
    assert "refused the login" in lines[0] and "nothing was published" in lines[0]
