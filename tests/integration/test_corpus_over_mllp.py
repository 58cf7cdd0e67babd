"""The whole corpus over MLLP: every message parsed, stored and acknowledged as its header asks
(HL7 v2 chapter 2: AA, or CA and/or AA as MSH-15/16 say, none for NE/NE or an ACK message)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.samples import corpus_files
from tests.support import engine_process, write_archive_channel

BAD = ("sample_bad",)  # python-hl7's deliberately broken samples are expected to be refused
# HAPI's OML^O21 examples have no MSH-10: refused AR, ERR-3 101 (a message nobody can ACK)
NO_CONTROL_ID = {"example_oml_o21-11.hl7#1", "example_oml_o21-12.hl7#1",
                 "example_oml_o21.hl7#11", "example_oml_o21.hl7#12"}
ANSWERED = (": AA ", ": CA ", ": no ACK (as MSH-15/16 ask)",
            ": sent (an ACK message is not acknowledged)")


def test_every_corpus_message_is_acknowledged_with_conduit_send(tmp_path: Path) -> None:
    port = write_archive_channel(tmp_path, "corpus")
    files = [f for f in corpus_files() if not f.name.startswith(BAD)]
    with engine_process(tmp_path / "channels", tmp_path / "data"):
        result = subprocess.run(
            [sys.executable, "-m", "conduit", "send", f"127.0.0.1:{port}", "-c", "4",
             *map(str, files)], capture_output=True, text=True, timeout=300)
    lines = result.stdout.splitlines()
    refused = {line.split(": ")[0].rsplit("/", 1)[1] for line in lines[:-1]
               if ": AR  required field MSH-10 (message control id) is missing" in line}
    assert refused == NO_CONTROL_ID
    odd = [line for line in lines[:-1] if not any(a in line for a in ANSWERED)
           and line.split(": ")[0].rsplit("/", 1)[1] not in NO_CONTROL_ID]
    assert not odd, "\n".join(odd[:20])
    assert any(": CA " in line for line in lines) and any("no ACK" in line for line in lines)
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert f", {len(NO_CONTROL_ID)} not," in lines[-1]
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
            # AA, or the commit ACK CA a message with MSH-15 AL asks for
            assert b"MSA|AA|" in result.stdout or b"MSA|CA|" in result.stdout, (
                path.name, result.stdout[-500:])
