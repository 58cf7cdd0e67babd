"""The whole corpus over MLLP: every message parsed, stored and acknowledged AA."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.samples import corpus_files
from tests.support import engine_process, write_archive_channel

BAD = ("sample_bad",)  # python-hl7's deliberately broken samples are expected to be refused


def test_every_corpus_message_is_acknowledged_with_conduit_send(tmp_path: Path) -> None:
    port = write_archive_channel(tmp_path, "corpus")
    files = [f for f in corpus_files() if not f.name.startswith(BAD)]
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        result = subprocess.run(
            [sys.executable, "-m", "conduit", "send", f"127.0.0.1:{port}", "-c", "4",
             *map(str, files)], capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    not_aa = [line for line in lines[:-1] if ": AA " not in line]
    assert not not_aa, "\n".join(not_aa[:20])
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    sent = int(lines[-1].split()[1])
    assert sent >= len(files)  # batch files hold several messages each


def test_python_hl7_mllp_send_gets_aa_for_line_ending_variants(tmp_path: Path) -> None:
    """python-hl7's own mllp_send tool (an independent peer) with LF, CRLF and BOM files."""
    port = write_archive_channel(tmp_path, "peer")
    edge = sorted(p for p in corpus_files() if "edge-raw" in p.parts)
    mllp_send = Path(sys.executable).with_name("mllp_send")
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        for path in edge:
            text = path.read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            loose = tmp_path / path.name
            loose.write_bytes(text.removeprefix(b"\xef\xbb\xbf"))
            if not text.lstrip(b"\xef\xbb\xbf").startswith(b"MSH|^~\\&|"):
                continue  # --loose only understands standard delimiters
            result = subprocess.run([str(mllp_send), "--loose", "-f", str(loose), "-p",
                                     str(port), "127.0.0.1"], capture_output=True, timeout=60)
            assert result.returncode == 0, result.stderr
            assert b"MSA|AA|" in result.stdout, (path.name, result.stdout[-500:])
