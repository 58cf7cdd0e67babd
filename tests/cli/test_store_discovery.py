"""The CLI finds its store as `conduit run` does (conduit.yaml upward, CONDUIT_CONFIG,
CONDUIT_DATA_DIR), says which it opened, never creates one by reading, and reports a missing
store, a closed port or a missing terminal in one line."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from conduit.store import Store
from tests.support import free_port


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDUIT_")}
    return {**env, **extra}


def conduit(*args: str, cwd: Path, env: dict[str, str] | None = None,
            stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "conduit", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env or clean_env(),
                          input=stdin if stdin is not None else "",
                          )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def make_store(data_dir: Path) -> None:
    store = Store(f"sqlite:///{data_dir / 'conduit.db'}")
    store.migrate()

    async def write() -> None:
        await store.received("adt", b"MSH|^~\\&|A\r", control_id="FOUND1",
                             message_type="ADT^A01")
        await store.close()

    asyncio.run(write())


def test_reading_where_there_is_no_store_is_an_error_naming_where_it_looked(
        tmp_path: Path) -> None:
    line = one_line_error(conduit("messages", cwd=tmp_path))
    assert f"no store at {tmp_path / 'data' / 'conduit.db'}" in line
    assert "conduit.yaml" in line and "CONDUIT_DATA_DIR" in line
    assert not (tmp_path / "data").exists()
    one_line_error(conduit("messages", "show", "1", cwd=tmp_path))
    one_line_error(conduit("users", "list", cwd=tmp_path))
    one_line_error(conduit("prune", "--older-than", "30d", "--dry-run", cwd=tmp_path))
    assert not (tmp_path / "data").exists()


def test_conduit_yaml_is_found_upward_and_the_store_is_named(tmp_path: Path) -> None:
    (tmp_path / "conduit.yaml").write_text("data_dir: var/data\n")
    make_store(tmp_path / "var" / "data")
    deeper = tmp_path / "channels" / "lab"
    deeper.mkdir(parents=True)
    result = conduit("messages", cwd=deeper)
    assert result.returncode == 0, result.stderr
    assert "FOUND1" in result.stdout and "1 message(s)" in result.stdout
    assert f"store sqlite:///{tmp_path / 'var' / 'data' / 'conduit.db'}" in result.stderr
    assert f"settings {tmp_path / 'conduit.yaml'}" in result.stderr


def test_conduit_config_and_data_dir_from_the_environment(tmp_path: Path) -> None:
    make_store(tmp_path / "elsewhere")
    elsewhere = conduit("messages", cwd=tmp_path,
                        env=clean_env(CONDUIT_DATA_DIR=str(tmp_path / "elsewhere")))
    assert elsewhere.returncode == 0 and "FOUND1" in elsewhere.stdout, elsewhere.stderr
    (tmp_path / "prod.yaml").write_text(f"data_dir: {tmp_path / 'elsewhere'}\n")
    configured = conduit("messages", cwd=tmp_path / "elsewhere",
                         env=clean_env(CONDUIT_CONFIG=str(tmp_path / "prod.yaml")))
    assert configured.returncode == 0 and "FOUND1" in configured.stdout, configured.stderr


def test_missing_postgres_database_is_one_line(tmp_path: Path) -> None:
    name = f"conduit_missing_{uuid.uuid4().hex[:8]}"
    line = one_line_error(conduit("messages", "--store-url",
                                  f"postgresql://postgres@127.0.0.1:5432/{name}", cwd=tmp_path))
    assert f'database "{name}" does not exist' in line and "conduit db init" in line


def test_unreachable_postgres_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    line = one_line_error(conduit("messages", "--store-url",
                                  f"postgresql://postgres@127.0.0.1:{port}/x", cwd=tmp_path))
    assert f"127.0.0.1:{port}" in line or f"port {port}" in line


def test_send_to_a_closed_port_is_one_line(tmp_path: Path) -> None:
    message = tmp_path / "a.hl7"
    message.write_text("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X1|P|2.5\rPID|1||1\r")
    port = free_port()
    line = one_line_error(conduit("send", f"127.0.0.1:{port}", str(message), cwd=tmp_path))
    assert f"127.0.0.1:{port}" in line and "refused" in line


def test_users_add_without_a_terminal_points_at_password_stdin(tmp_path: Path) -> None:
    env = clean_env(CONDUIT_DATA_DIR=str(tmp_path / "data"))
    line = one_line_error(conduit("users", "add", "ann", "--role", "admin", cwd=tmp_path, env=env))
    assert "--password-stdin" in line
    added = conduit("users", "add", "ann", "--role", "admin", "--password-stdin", cwd=tmp_path,
                    env=env, stdin="correct horse battery\n")
    assert added.returncode == 0, added.stderr
    assert "user ann added as admin" in added.stdout
    assert f"store sqlite:///{tmp_path / 'data' / 'conduit.db'}" in added.stderr
