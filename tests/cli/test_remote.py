"""The CLI driving a running engine through its management API with a token: status, channels
(list, pause, resume, stop, start, deploy, undeploy), messages (--json, --q, --since with an
offset), dead letters (list, replay), breakers (list, reset); every failure one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import yaml

from tests.support import engine_process, free_port, wait_until, write_channel

A01 = ("MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01|REMOTE1|P|2.5\r"
       "PID|1||P77^^^HOSP^MR||ZEPHYRINE^ANN||19800101|F\r")


def conduit(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conduit", *args], capture_output=True,
                          text=True, timeout=120, env=env, input=stdin)


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_cli_drives_a_running_engine(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")}
    data = tmp_path / "data"
    env["CONDUIT_DATA_DIR"] = str(data)
    port, dashboard, closed = free_port(), free_port(), free_port()
    write_channel(tmp_path / "channels", {
        "name": "remote-a", "source": {"type": "mllp", "host": "127.0.0.1", "port": port},
        "search": {"full_text": True},  # `messages --q` below searches the full text
        "destinations": [
            {"name": "archive", "type": "file", "path": str(tmp_path / "out" / "{{ id }}")},
            {"name": "down", "type": "mllp", "host": "127.0.0.1", "port": closed,
             "retry": {"attempts": 1}, "breaker": {"failures": 5, "reset": "60s"}}]})
    for name, role in (("olga", "operator"), ("adam", "admin")):
        added = conduit("users", "add", name, "--role", role, "--password-stdin", env=env,
                        stdin="a long enough password\n")
        assert added.returncode == 0, added.stderr
    operator = conduit("users", "token", "olga", env=env).stdout.strip()
    admin = conduit("users", "token", "adam", env=env).stdout.strip()
    url = f"http://127.0.0.1:{dashboard}"
    api = {**env, "CONDUIT_URL": url, "CONDUIT_TOKEN": operator}
    with engine_process(tmp_path / "channels", data,
                        env={"CONDUIT_DASHBOARD_PORT": str(dashboard)}):
        status = conduit("status", env=api)
        assert status.returncode == 0, status.stderr
        assert f"{url}: ok" in status.stdout and "remote-a" in status.stdout
        assert json.loads(conduit("status", "--json", env=api).stdout)["status"] == "ok"

        listed = conduit("channels", env=api)
        assert listed.returncode == 0 and "remote-a" in listed.stdout, listed.stderr
        assert f"mllp://127.0.0.1:{port}" in listed.stdout
        assert "remote-a: paused" in conduit("channels", "pause", "remote-a", env=api).stdout
        assert "remote-a: started" in conduit("channels", "resume", "remote-a", env=api).stdout
        assert "remote-a: stopped" in conduit("channels", "stop", "remote-a", env=api).stdout
        assert "remote-a: started" in conduit("channels", "start", "remote-a", env=api).stdout
        missing = one_line(conduit("channels", "pause", "nope", env=api))
        assert "404" in missing and "no channel 'nope'" in missing

        message = tmp_path / "a01.hl7"
        message.write_text(A01)
        assert conduit("send", f"127.0.0.1:{port}", str(message), env=env).returncode == 0

        def dead_lettered() -> bool:
            answer = conduit("dlq", "--json", env=api)
            return answer.returncode == 0 and bool(json.loads(answer.stdout)["items"])

        wait_until(dead_lettered, timeout=30)
        dlq = conduit("dlq", env=api)
        assert "remote-a" in dlq.stdout and "down" in dlq.stdout
        assert "1 dead letter(s)" in dlq.stdout
        replayed = conduit("dlq", "replay", "remote-a", "down", env=api)
        assert replayed.returncode == 0 and "replayed 1 message(s)" in replayed.stdout

        # full text over the API, as JSON; the offset in --since means the same instant
        since = (datetime.now(UTC) - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))
        wait_until(lambda: bool(json.loads(conduit(
            "messages", "--q", "zephyrine", "--json", env=api).stdout or "[]")), timeout=20)
        found = json.loads(conduit("messages", "--q", "zephyrine", "--json", "--since",
                                   since.isoformat(), env=api).stdout)
        assert [m["control_id"] for m in found] == ["REMOTE1"]
        assert found[0]["patient_id"] == "P77"
        assert json.loads(conduit("messages", "--q", "nobodyhere", "--json", env=api).stdout) == []
        shown = json.loads(conduit("messages", "show", str(found[0]["id"]), "--json",
                                   env=api).stdout)
        assert "ZEPHYRINE" in shown["raw"]
        page = conduit("messages", "show", str(found[0]["id"]), env=api).stdout
        assert "-- raw --" in page and "ZEPHYRINE" in page and "== destination down" in page
        # the same search on the store, without a URL
        local = conduit("messages", "--q", "zephyrine", env=env)
        assert "REMOTE1" in local.stdout and "1 message(s)" in local.stdout, local.stderr

        breakers = conduit("breakers", env=api)
        assert breakers.returncode == 0 and "remote-a" in breakers.stdout, breakers.stderr
        reset = conduit("breakers", "reset", "remote-a", "down", env=api)
        assert reset.returncode == 0 and "remote-a/down: closed" in reset.stdout, reset.stderr

        other = tmp_path / "elsewhere" / "remote-b.yaml"
        other.parent.mkdir()
        other.write_text(yaml.safe_dump({
            "name": "remote-b", "source": {"type": "mllp", "host": "127.0.0.1",
                                           "port": free_port()},
            "destinations": [{"name": "f", "type": "file",
                              "path": str(tmp_path / "out-b" / "{{ id }}")}]}))
        refused = one_line(conduit("channels", "deploy", str(other), env=api))
        assert "403" in refused and "admin" in refused
        deployed = conduit("channels", "deploy", str(other), "--token", admin, env=api)
        assert deployed.returncode == 0, deployed.stderr
        assert "remote-b: deployed, started" in deployed.stdout
        assert (data / "deployed" / "remote-b.yaml").is_file()
        broken = tmp_path / "elsewhere" / "broken.yaml"
        broken.write_text("name: broken\nsource: {type: mllp, port: nope}\n")
        problem = one_line(conduit("channels", "deploy", str(broken), "--token", admin, env=api))
        assert "422" in problem and "broken.yaml:2" in problem
        assert not (data / "deployed" / "broken.yaml").exists()
        gone = conduit("channels", "undeploy", "remote-b", "--token", admin, env=api)
        assert "remote-b: undeployed" in gone.stdout, gone.stderr

        bad_token = one_line(conduit("status", env={**api, "CONDUIT_TOKEN": "cdt_wrong"}))
        assert "refused the token" in bad_token and "conduit users token" in bad_token
        no_token = one_line(conduit("channels", env={**env, "CONDUIT_URL": url}))
        assert "CONDUIT_TOKEN" in no_token
    unreachable = one_line(conduit("status", env=api))
    assert f"cannot reach the engine at {url}: connection refused" in unreachable
