"""The file destination: templated paths, atomic writes, overwrite/fsync, where a write runs."""

from __future__ import annotations

import asyncio
import errno
import itertools
import os
from pathlib import Path
from typing import Any

import pytest

from conduit.connectors import file as file_module
from conduit.connectors.base import ConnectorContext
from conduit.connectors.file import FileDestination, FileDestinationConfig
from conduit.core.errors import PermanentError
from conduit.core.protocols import Outbound
from conduit.hl7.message import Message

ADT = (b"MSH|^~\\&|REG|HOSP|ADT|HOSP|20260101120000||ADT^A01^ADT_A01|{id}|P|2.5\r"
       b"PID|1||PAT123^^^HOSP^MR||TESTPATIENT^ALPHA||19800101|F\r")


def adt(control_id: str) -> bytes:
    return ADT.replace(b"{id}", control_id.encode())


def destination(path: str | Path, **options: Any) -> FileDestination:
    config = FileDestinationConfig.model_validate(
        {"name": "archive", "type": "file", "path": str(path), **options})
    return FileDestination(config, ConnectorContext("chan", Path(".")))


def outbound(content: bytes, *, message_id: int = 7, parsed: bool = False) -> Outbound:
    return Outbound(message_id=message_id, channel="chan", destination="archive",
                    content=content, message=Message.parse(content) if parsed else None)


def send(dest: FileDestination, out: Outbound) -> None:
    asyncio.run(dest.send(out))


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture
def threads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """What the file destination hands to ``asyncio.to_thread`` (it still runs there)."""
    handed: list[object] = []
    real_to_thread = asyncio.to_thread

    async def to_thread(func: Any, /, *args: Any) -> Any:
        handed.append(func)
        return await real_to_thread(func, *args)

    monkeypatch.setattr(file_module.asyncio, "to_thread", to_thread)
    return handed


def no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(data: object) -> Message:
        raise AssertionError("the message was parsed again")

    monkeypatch.setattr(file_module.Message, "parse", fail)


def test_writes_the_content_byte_for_byte_at_the_rendered_path(tmp_path: Path) -> None:
    content = adt("A1") + "PID|2||Ünïcode\r".encode("latin-1")
    dest = destination(tmp_path / "out" / "{{ msg['MSH-9.1'] }}" / "{{ msg['MSH-10'] }}.hl7")
    send(dest, outbound(content))
    assert (tmp_path / "out" / "ADT" / "A1.hl7").read_bytes() == content
    assert leftovers(tmp_path / "out" / "ADT") == []


def test_uses_the_message_the_engine_parsed(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    out = outbound(adt("A2"), parsed=True)
    no_parse(monkeypatch)
    send(destination(tmp_path / "{{ msg['MSH-10'] }}.hl7"), out)
    assert (tmp_path / "A2.hl7").read_bytes() == adt("A2")


def test_parses_only_when_the_template_reads_the_message(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads = destination(tmp_path / "{{ msg['MSH-10'] }}.hl7")
    send(reads, outbound(adt("A3")))  # no parsed message at hand: parsed here
    assert (tmp_path / "A3.hl7").exists()
    escapes = destination(tmp_path / "{{ 'a|b' | hl7_escape }}-{{ id }}.hl7")
    assert escapes._reads_message  # the filter takes the message's separators
    no_parse(monkeypatch)
    send(destination(tmp_path / "{{ channel }}-{{ destination }}-{{ id }}.hl7"),
         outbound(b'{"resourceType": "Patient"}', message_id=9))
    assert (tmp_path / "chan-archive-9.hl7").read_bytes() == b'{"resourceType": "Patient"}'
    send(destination(tmp_path / "fixed.json"), outbound(b"{}"))
    assert (tmp_path / "fixed.json").read_bytes() == b"{}"


def test_a_template_that_fails_is_a_permanent_error(tmp_path: Path) -> None:
    dest = destination(tmp_path / "{{ msg['MSH-10'] }}.hl7")
    with pytest.raises(PermanentError, match="file path template failed"):
        send(dest, outbound(b"not hl7 at all"))
    with pytest.raises(PermanentError, match="file path template failed"):
        send(destination(tmp_path / "{{ nothing }}.hl7"), outbound(adt("A4")))


@pytest.mark.parametrize("template", [
    "{{ msg['PID-3.1'] }}/../../x.hl7", "../{{ id }}.hl7", "out/..", "{{ msg['PID-9'] }}",
    "out/x\x00.hl7", "out/.", "/"])
def test_unsafe_paths_are_refused(template: str) -> None:
    with pytest.raises(PermanentError, match="is not allowed"):
        send(destination(template), outbound(adt("A5"), parsed=True))


def test_a_trailing_separator_names_the_file_as_pathlib_did(tmp_path: Path) -> None:
    send(destination(f"{tmp_path}/out/{{{{ id }}}}/"), outbound(adt("A6")))
    assert (tmp_path / "out" / "7").read_bytes() == adt("A6")


def test_overwrite(tmp_path: Path) -> None:
    send(destination(tmp_path / "x.hl7"), outbound(adt("OLD")))
    send(destination(tmp_path / "x.hl7"), outbound(adt("NEW")))
    assert (tmp_path / "x.hl7").read_bytes() == adt("NEW")
    with pytest.raises(PermanentError, match="exists and overwrite is false"):
        send(destination(tmp_path / "x.hl7", overwrite=False), outbound(adt("NEWER")))
    assert (tmp_path / "x.hl7").read_bytes() == adt("NEW")
    send(destination(tmp_path / "y.hl7", overwrite=False), outbound(adt("Y")))
    assert (tmp_path / "y.hl7").read_bytes() == adt("Y")
    assert os.stat(tmp_path / "y.hl7").st_nlink == 1
    assert leftovers(tmp_path) == []


def test_overwrite_false_without_hard_links(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: str, dst: str) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(file_module.os, "link", no_link)
    dest = destination(tmp_path / "{{ msg['MSH-10'] }}.hl7", overwrite=False)
    send(dest, outbound(adt("Z")))
    assert (tmp_path / "Z.hl7").read_bytes() == adt("Z")
    with pytest.raises(PermanentError, match="exists and overwrite is false"):
        send(dest, outbound(adt("Z")))
    assert leftovers(tmp_path) == []


def test_fsync_syncs_file_and_folder_in_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 threads: list[object]) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(file_module.os, "fsync", fsync)
    dest = destination(tmp_path / "sub" / "dir" / "{{ id }}.hl7")
    send(dest, outbound(adt("F"), message_id=1))
    assert (tmp_path / "sub" / "dir" / "1.hl7").read_bytes() == adt("F")
    # the file, its folder, and the two folders that got a new folder; off the loop
    assert len(synced) == 4 and len(threads) == 1
    send(dest, outbound(adt("G"), message_id=2))
    assert len(synced) == 6 and len(threads) == 2  # the file and its folder


def test_without_fsync_small_writes_run_on_the_loop_and_large_ones_in_a_thread(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threads: list[object]) -> None:

    monkeypatch.setattr(file_module.os, "fsync", lambda fd: pytest.fail("fsync"))
    dest = destination(tmp_path / "{{ id }}.hl7", fsync=False)
    send(dest, outbound(adt("S"), message_id=1))
    assert threads == []
    big = adt("B") + b"OBX|1|ED|||" + b"x" * FileDestination.INLINE_MAX_BYTES + b"\r"
    send(dest, outbound(big, message_id=2))
    assert len(threads) == 1
    assert (tmp_path / "1.hl7").read_bytes() == adt("S")
    assert (tmp_path / "2.hl7").read_bytes() == big


def test_slow_inline_writes_move_to_a_thread(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             threads: list[object]) -> None:

    dest = destination(tmp_path / "{{ id }}.hl7", fsync=False)
    monkeypatch.setattr(dest, "SLOW_INLINE_WRITE", -1.0)
    send(dest, outbound(adt("1"), message_id=1))
    assert threads == []
    send(dest, outbound(adt("2"), message_id=2))
    assert len(threads) == 1
    dest._inline_from = 0.0  # the pause is over: inline again
    send(dest, outbound(adt("3"), message_id=3))
    assert len(threads) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1.hl7", "2.hl7", "3.hl7"]


@pytest.mark.parametrize("fsync", [True, False])
def test_a_folder_removed_after_the_first_write_is_made_again(tmp_path: Path,
                                                              fsync: bool) -> None:
    dest = destination(tmp_path / "a" / "b" / "{{ id }}.hl7", fsync=fsync)
    send(dest, outbound(adt("1"), message_id=1))
    (tmp_path / "a" / "b" / "1.hl7").unlink()
    (tmp_path / "a" / "b").rmdir()
    (tmp_path / "a").rmdir()
    send(dest, outbound(adt("2"), message_id=2))
    assert (tmp_path / "a" / "b" / "2.hl7").read_bytes() == adt("2")


def test_a_temporary_name_left_by_a_crash_is_skipped(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(file_module, "_temp_numbers", itertools.count(5))
    stale = tmp_path / f".x.hl7.{os.getpid()}.5.tmp"
    stale.write_bytes(b"partial")
    send(destination(tmp_path / "x.hl7", fsync=False), outbound(adt("X")))
    assert (tmp_path / "x.hl7").read_bytes() == adt("X")
    assert stale.read_bytes() == b"partial"
    assert leftovers(tmp_path) == [stale.name]


def test_a_failed_write_leaves_no_temporary_file(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(file_module.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        send(destination(tmp_path / "x.hl7", fsync=False), outbound(adt("X")))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("template", ["{{ id }}.hl7", "./{{ id }}.hl7", "sub/{{ id }}.hl7"])
def test_relative_paths_and_folders_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              template: str) -> None:
    monkeypatch.chdir(tmp_path)
    made: list[str] = []
    real_makedirs = os.makedirs

    def makedirs(name: str, exist_ok: bool = False) -> None:
        made.append(name)
        real_makedirs(name, exist_ok=exist_ok)

    monkeypatch.setattr(file_module.os, "makedirs", makedirs)
    for fsync in (True, False):
        dest = destination(template, fsync=fsync)
        for n in (1, 2, 3):
            send(dest, outbound(adt(str(n)), message_id=n))
            assert (tmp_path / template.replace("{{ id }}", str(n))).read_bytes() == adt(str(n))
    assert len(made) == 2  # once per destination, not per write
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize(("mode", "expected"), [(None, 0o600), ("0640", 0o640), ("644", 0o644)])
def test_file_permissions(tmp_path: Path, mode: str | None, expected: int) -> None:
    """Owner only by default (the files hold patient data); ``mode`` sets them exactly,
    whatever the umask, with overwrite and without."""
    options = {} if mode is None else {"mode": mode}
    previous = os.umask(0o077)
    try:
        for overwrite in (True, False):
            target = tmp_path / f"{overwrite}.hl7"
            send(destination(target, overwrite=overwrite, **options), outbound(adt("M1")))
            assert os.stat(target).st_mode & 0o777 == expected
    finally:
        os.umask(previous)


def test_a_mode_that_is_not_octal_permissions_is_refused() -> None:
    with pytest.raises(ValueError, match="mode"):
        FileDestinationConfig.model_validate(
            {"name": "archive", "type": "file", "path": "x.hl7", "mode": "rw-r--r--"})


# --- paths fed by message content never leave the destination's folder (issue 17, item 2) ----

def test_an_absolute_path_from_the_message_is_refused(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    work, outside = tmp_path / "work", tmp_path / "outside"
    work.mkdir()
    outside.mkdir()
    monkeypatch.chdir(work)
    dest = destination("{{ msg['MSH-10'] }}.hl7")
    with pytest.raises(PermanentError) as refused:
        send(dest, outbound(adt(f"{outside}/SECRETNAME"), message_id=41))
    assert "message 41" in str(refused.value)
    assert "SECRETNAME" not in str(refused.value) and str(outside) not in str(refused.value)
    assert list(outside.iterdir()) == []
    send(dest, outbound(adt("INSIDE"), message_id=42))  # an ordinary id still lands inside
    assert (work / "INSIDE.hl7").read_bytes() == adt("INSIDE")


def test_a_symlink_pointing_out_is_refused(tmp_path: Path) -> None:
    out, outside = tmp_path / "out", tmp_path / "outside"
    out.mkdir()
    outside.mkdir()
    (out / "link").symlink_to(outside)
    dest = destination(f"{out}/{{{{ msg['MSH-10'] }}}}.hl7")
    with pytest.raises(PermanentError, match="message 43"):
        send(dest, outbound(adt("link/SECRETNAME"), message_id=43))
    assert list(outside.iterdir()) == []
    (out / "inner").mkdir()
    (out / "inlink").symlink_to(out / "inner")  # a link that stays inside is fine
    send(dest, outbound(adt("inlink/OK"), message_id=44))
    assert (out / "inner" / "OK.hl7").read_bytes() == adt("inlink/OK")


@pytest.mark.parametrize("control_id", ["../SECRETNAME", "a/../../SECRETNAME", "../../SECRETNAME"])
def test_climbing_out_is_refused_without_naming_the_path(tmp_path: Path,
                                                         control_id: str) -> None:
    dest = destination(f"{tmp_path}/out/{{{{ msg['MSH-10'] }}}}.hl7")
    with pytest.raises(PermanentError, match="message 45") as refused:
        send(dest, outbound(adt(control_id), message_id=45))
    assert "SECRETNAME" not in str(refused.value)
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["out"])


def test_base_dir_can_be_given(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    dest = destination(f"{tmp_path}/{{{{ msg['MSH-10'] }}}}.hl7", base_dir=str(tmp_path / "a"))
    send(dest, outbound(adt("a/IN"), message_id=46))
    assert (tmp_path / "a" / "IN.hl7").exists()
    with pytest.raises(PermanentError, match="message 47"):
        send(dest, outbound(adt("b/OUT"), message_id=47))
