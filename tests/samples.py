"""Shared sample messages: the public corpus (tests/samples/corpus) and small synthetic ones.

Import as ``from tests.samples import ...``.
The synthetic messages use made-up names and ids only; the corpus holds public upstream test
data (sources and licences in tests/samples/corpus/MANIFEST.md).
"""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).parent / "samples" / "corpus"


def corpus_files() -> list[Path]:
    """Every ``*.hl7`` file of the corpus (edge-raw/ included), sorted."""
    return sorted(CORPUS.rglob("*.hl7"))


def corpus_id(path: Path) -> str:
    """Short readable id for parametrised tests (``hapi-hl7v2/messages-04.hl7``)."""
    return path.relative_to(CORPUS).as_posix()


def sample(name: str) -> bytes:
    """Bytes of a corpus file by relative path (``python-hl7/sample_hl7.hl7``) or unique name."""
    direct = CORPUS / name
    if direct.is_file():
        return direct.read_bytes()
    found = [p for p in CORPUS.rglob(name) if p.is_file()]
    if len(found) != 1:
        raise FileNotFoundError(f"{name!r} matches {len(found)} corpus files")
    return found[0].read_bytes()


# --- synthetic messages (CR-separated, trailing CR) -----------------------------------------

ADT_A01 = (
    "MSH|^~\\&|REGADT|GOOD HEALTH HOSPITAL|LABAPP|LAB|20240102030405||ADT^A01^ADT_A01|"
    "MSG00001|P|2.5.1|||AL|NE||UNICODE UTF-8\r"
    "EVN|A01|20240102030405\r"
    "PID|1||PATID1234^^^GOOD HEALTH HOSPITAL^MR~SSN000000^^^USSSA^SS||TESTPATIENT^ALPHA^Q^^^^L||"
    "19700101|M|||1 EXAMPLE ST^^SPRINGFIELD^XX^00000^USA\r"
    "NK1|1|TESTPATIENT^BETA|SPO^Spouse^HL70063\r"
    "PV1|1|I|WARD1^101^A^GOOD HEALTH HOSPITAL||||DOC1^DOCTOR^TEST\r"
)

ORU_R01 = (
    "MSH|^~\\&|LABAPP|LAB|EHR|GOOD HEALTH HOSPITAL|20240102040506||ORU^R01^ORU_R01|"
    "MSG00002|P|2.5.1\r"
    "PID|1||PATID1234^^^GOOD HEALTH HOSPITAL^MR||TESTPATIENT^ALPHA\r"
    "OBR|1|ORD1|FIL1|GLU^Glucose^L\r"
    "OBX|1|NM|GLU^Glucose^L||5.4|mmol/L|3.9-5.8|N|||F\r"
    "OBX|2|ST|CMT^Comment^L||Fasting \\T\\ rested|||N|||F\r"
    "OBX|3|NM|K^Potassium^L||4.1|mmol/L|3.5-5.1|N|||F\r"
    "NTE|1||Line one\\.br\\Line two\r"
)

# v2.3 with an 8859/1 charset: the encoded form holds a Latin-1 byte (é = 0xE9).
ADT_A08_LATIN1 = (
    "MSH|^~\\&|REGADT|HOSP|LABAPP|LAB|20240102030405||ADT^A08|MSG00003|P|2.3||||||8859/1\r"
    "EVN|A08|20240102030405\r"
    "PID|1||PATID5678^^^HOSP^MR||TESTPATIENT^RENÉE\r"
)
ADT_A08_LATIN1_BYTES = ADT_A08_LATIN1.encode("iso8859-1")

# v2.1, no trigger in MSH-9, no charset: old-style ACK rules apply.
ACK_V21 = "MSH|^~\\&|RADAPP|RAD|ADTAPP|ADT|19940502||ACK|CTRL21|P|2.1\rMSA|AA|MSG0\r"

ADT_A01_WITH_Z = ADT_A01 + "ZPI|1|first\rZPI|2|second\r"
