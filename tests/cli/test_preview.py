"""``conduit test CHANNEL.yaml --against-store``: an edited channel previewed over traffic stored
by a running engine, on SQLite and PostgreSQL; nothing sent, nothing written."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from click.testing import CliRunner

from conduit.cli import main
from tests.engine.preview_scenario import (
    check_outcomes,
    deployed,
    edited_yaml,
    fingerprint,
    store_traffic,
)
from tests.support import MllpReceiver, running_engine


def _stored(tmp_path: Path, store_url: str, receiver: MllpReceiver) -> None:
    async def scenario() -> None:
        async with running_engine([deployed(tmp_path, receiver.port)], tmp_path,
                                  store_url=store_url) as engine:
            await store_traffic(engine, receiver)

    asyncio.run(scenario())


def test_preview_against_the_store_shows_what_would_change(tmp_path: Path,
                                                           store_url: str) -> None:
    with MllpReceiver() as receiver:
        _stored(tmp_path, store_url, receiver)
        edited = tmp_path / "edited.yaml"
        edited.write_text(edited_yaml(tmp_path, receiver.port), encoding="utf-8")
        sent, files, before = len(receiver.messages), sorted((tmp_path / "out").iterdir()), \
            fingerprint(store_url)

        as_json = CliRunner().invoke(main, ["test", str(edited), "--against-store",
                                            "--store-url", store_url, "--json"])
        assert as_json.exit_code == 0, as_json.output
        report = json.loads(as_json.stdout)
        check_outcomes(report["messages"])
        assert report["summary"] == {"messages": 5, "unchanged": 1, "changed": 2,
                                     "newly_filtered": 1, "no_longer_filtered": 1, "errors": 0,
                                     "truncated": False}

        text = CliRunner().invoke(main, ["test", str(edited), "--against-store",
                                         "--store-url", store_url, "--since", "1h"])
        assert text.exit_code == 0, text.output
        out = text.stdout
        assert "MSH-10 M1 (" in out and "): CHANGED\n" in out
        assert "+PID|1||P1^^^HOSP^MR||smith^GIVEN||19800101|F\n" in out
        assert "    route downstream: filtered (MSH-9.2 is 'A03'" in out
        assert "MSH-10 M3 (" in out and "): NEWLY FILTERED\n" in out
        assert "\r" not in out
        assert out.rstrip().endswith("5 messages, 1 unchanged, 2 changed, 1 newly filtered, "
                                     "1 no longer filtered, 0 errors")

        last = CliRunner().invoke(main, ["test", str(edited), "--against-store",
                                         "--store-url", store_url, "--last", "2", "--json"])
        assert [m["control_id"] for m in json.loads(last.stdout)["messages"]] == ["M4", "M5"]
        assert json.loads(last.stdout)["summary"]["truncated"] is True

        assert len(receiver.messages) == sent
        assert sorted((tmp_path / "out").iterdir()) == files
        assert fingerprint(store_url) == before


def test_a_broken_edit_is_reported_with_file_and_line(tmp_path: Path, sqlite_url: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: {type: mllp, port: 0}\ndestinations:\n  - name: a\n"
                   "    type: file\n    pth: out\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(bad), "--against-store",
                                       "--store-url", sqlite_url])
    assert result.exit_code == 1
    assert f"{bad}:6: destinations[0].pth: unknown key" in result.stderr


def test_no_store_is_an_error_not_a_new_empty_one(tmp_path: Path) -> None:
    channel = tmp_path / "c.yaml"
    channel.write_text(edited_yaml(tmp_path, 1), encoding="utf-8")
    result = CliRunner().invoke(main, ["test", str(channel), "--against-store",
                                       "--data-dir", str(tmp_path / "nowhere")])
    assert result.exit_code == 1
    assert "no store at" in result.stderr
    assert not (tmp_path / "nowhere").exists()
