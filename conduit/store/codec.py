"""Stored content is compressed; the first byte of a stored value says how the rest is stored.

A stored message costs its raw content plus every copy the pipeline made of it, so copies cost
next to nothing:

- ``RAW_COPY`` / ``TRANSFORMED_COPY``: the content *is* the message's raw (or transformed)
  content: one byte, no body. Routed content is usually exactly the transformed content.
- ``DELTA``: deflate primed with the message's raw content as its dictionary (``zdict``). A
  transformed near-copy of a 700-byte message (a ``set`` step changed a field) takes about a dozen
  bytes, and compressing it is cheaper than compressing it alone.
- ``HL7_DELTA``: the same primed with :data:`HL7_DICTIONARY` then the raw content, for replies
  (an ACK shares MSH fields with the message it answers and the rest is common HL7 text).
- ``HL7``: deflate primed with :data:`HL7_DICTIONARY` (HL7 v2 text that most messages contain):
  a 700-byte ADT stores in about 345 bytes instead of 410.
- ``DEFLATE`` / ``PLAIN``: anything else (deflate when it pays).

Windows are sized to dictionary plus content: zlib's default 32 KB window and memory level cost
tens of µs to set up (and fault in) for every small message here, a 2-4 KB window a few µs.
Reading a delta or a copy needs the message's raw (and transformed) content: :func:`needs_raw`
and :func:`needs_transformed` say when; the store keeps them as long as the message exists.
"""

from __future__ import annotations

import zlib

PLAIN, DEFLATE, DELTA = b"\x00", b"\x01", b"\x02"
HL7, HL7_DELTA, RAW_COPY, TRANSFORMED_COPY = b"\x03", b"\x04", b"\x05", b"\x06"
_NEEDS_RAW = frozenset((DELTA, HL7_DELTA, RAW_COPY))

#: Preset dictionary of HL7 v2 text (segment starts, common field and table values), written
#: from the standard, not from any message of ours. FROZEN: stored content refers to it byte for
#: byte; a better dictionary needs a new format byte, and this one stays for reading.
HL7_DICTIONARY = (
    b"BHS|^~\\&|FHS|^~\\&|BTS|FTS|"
    b"MFN|MFE|MFI|STF|PRA|QRD|QRF|QAK|QPD|RCP|ERR|NTE|1|SPM|1|TQ1|1|RXA|0|1|RXR|RXO|RXE|RXD|"
    b"RXC|SCH|AIS|1|AIL|1|AIP|1|AIG|RGS|1|TXA|1|FT1|1|PR1|1|ROL|1|GT1|1|IN2|IN3|ACC|UB1|UB2|"
    b"DRG|PD1|PV2|MRG|ZPI|CTI|CON|1|IAM|1|"
    b"^^^^^^^^^^|||||||||||||||||||||||"
    b"^DOB^^|HL70001|HL70002|HL70004|HL70005|HL70063|HL70078|HL70085|HL70125|HL70189|HL70203|"
    b"HL70396|HL70443|HL70131|^HL70063|^HL7|^ISO|^UUID|^L|^DNS|^MR|^SS|^NPI|^PI|^AN|^VN|^XX|"
    b"^ISO_3166|^UCUM|^LN|^SCT|^ICD10|^I10|^I9CM|^CPT|^RXNORM|^NDC|^CVX|^MVX|^99ZZZ|^L^|"
    b"^PRN^PH^|^WPN^PH^|^PRN^CP^|^NET^Internet^|^ORN^PH^|^^^^^^L|^^^^^^D|^^^^^^A|^^^^^^^L|"
    b"^H^|^B^|^M^|^C^|^P^|^^^USA^H|^^^USA^|^USA^H^|^^^^USA|"
    b"ADT^A01^ADT_A01|ADT^A02^ADT_A02|ADT^A03^ADT_A03|ADT^A04^ADT_A01|ADT^A08^ADT_A01|"
    b"ADT^A11^ADT_A09|ADT^A13^ADT_A01|ADT^A28^ADT_A05|ADT^A31^ADT_A05|ADT^A40^ADT_A39|"
    b"ORM^O01^ORM_O01|OML^O21^OML_O21|ORU^R01^ORU_R01|SIU^S12^SIU_S12|MDM^T02^MDM_T02|"
    b"VXU^V04^VXU_V04|DFT^P03^DFT_P03|RDE^O11^RDE_O11|BAR^P01^BAR_P01|QBP^Q11^QBP_Q11|"
    b"RSP^K11^RSP_K11|ACK^A01^ACK|ACK^O01^ACK|ACK^R01^ACK|ACK|||AL|NE|ER|AL|AL|NE|NE|"
    b"|P|2.3|P|2.3.1|P|2.4|P|2.5|P|2.6|P|2.7|P|2.8|T|2.5.1|D|2.5.1|UNICODE UTF-8|8859/1|ASCII|"
    b"MSA|AA|MSA|AE|MSA|AR|MSA|CA|MSA|CE|MSA|CR|ERR|||207^Application internal error^HL70357|"
    b"E^Error^HL70516|"
    b"IN1|1|ORC|1|ORC|NW|ORC|RE|ORC|SC|ORC|CA|OBR|1|OBR|2|OBX|2|TX|OBX|1|CE|OBX|1|CWE|OBX|1|ST|"
    b"OBX|1|SN|OBX|1|DT|OBX|1|TS|OBX|1|ED|OBX|1|FT|OBX|1|NM|^^UCUM||N|||F|||F|||C|||P|||"
    b"||||||F|||||||||||F||||N|A|H|L|HH|LL|NEG|POS|"
    b"AL1|1|DA|AL1|1|FA|AL1|1|MA|AL1|2|DA|^RXNORM|SV|MO|MI|U|"
    b"DG1|1||DG1|2||^I10|||A|^I10|||W|^I10|||F|"
    b"NK1|1|NK1|2|SPO^Spouse^HL70063|MTH^Mother^HL70063|FTH^Father^HL70063|CHD^Child^HL70063|"
    b"EMC^Emergency Contact^HL70131|NOK^Next of Kin^HL70131|"
    b"PV1|1|I|PV1|1|O|PV1|1|E|PV1|1|P|PV1|1|R|^^^^^^^^|||||||||||||||||||||||||||||||||"
    b"^Dr|^MD|^^^^Dr|^^^^MD|^^^^^^|MED|SUR|CAR|EMR|ADM|ER|IN|OUT|V|A|I|R|E|"
    b"EVN|A01|EVN|A02|EVN|A03|EVN|A04|EVN|A08|EVN||"
    b"PID|1||PID|||^^^^MR~^^^^SS|^^^^MR||^^^^^^L||^^^^^^L|||F|||M|||U|||W|||S|||"
    b"MSH|^~\\&|"
)
_HL7_STARTS = (b"MSH", b"BHS", b"FHS")
_SMALL = 64  # below this, deflate's own framing eats what it would save


def _window(size: int) -> int:
    """deflate wbits whose window holds ``size`` bytes of dictionary and content (9..15)."""
    return min(15, max(9, (size + 262).bit_length()))


def _compressor(level: int, wbits: int, zdict: bytes | None) -> zlib._Compress:
    memory = 8 if wbits == 15 else 4
    if zdict is None:
        return zlib.compressobj(level, zlib.DEFLATED, -wbits, memory)
    return zlib.compressobj(level, zlib.DEFLATED, -wbits, memory, zdict=zdict)


_PRIMED: dict[int, zlib._Compress] = {}


def _hl7(content: bytes) -> bytes:
    """``content`` deflated with the HL7 dictionary; the dictionary is hashed once per window
    size and the primed state copied (cheaper than priming each time)."""
    wbits = _window(len(HL7_DICTIONARY) + len(content))
    primed = _PRIMED.get(wbits)
    if primed is None:
        primed = _PRIMED[wbits] = _compressor(4, wbits, HL7_DICTIONARY)
    compressor = primed.copy()
    return HL7 + compressor.compress(content) + compressor.flush()


def pack(content: bytes | None, base: bytes | None = None, *,
         transformed: bytes | None = None, reply: bool = False) -> bytes | None:
    """``content`` as stored.

    ``base``: the message's raw content; content equal to it is stored as ``RAW_COPY``, other
    content as a delta against it (``HL7_DELTA`` with ``reply``). ``transformed``: the message's
    transformed content; content equal to it is stored as ``TRANSFORMED_COPY``.
    """
    if content is None:
        return None
    if transformed is not None and content == transformed:
        return TRANSFORMED_COPY
    if base:
        if content == base:
            return RAW_COPY
        if reply and content[:3] in _HL7_STARTS:
            zdict, kind = HL7_DICTIONARY + base, HL7_DELTA
        else:
            zdict, kind = base, DELTA
        compressor = _compressor(1, _window(len(zdict) + len(content)), zdict)
        return kind + compressor.compress(content) + compressor.flush()
    if len(content) < _SMALL:
        return PLAIN + content
    if content[:3] in _HL7_STARTS:
        stored = _hl7(content)
    else:
        compressor = _compressor(6, _window(len(content)), None)
        stored = DEFLATE + compressor.compress(content) + compressor.flush()
    return stored if len(stored) <= len(content) else PLAIN + content


def needs_raw(stored: bytes | None) -> bool:
    """True when reading ``stored`` needs the message's raw content."""
    return stored is not None and bytes(stored[:1]) in _NEEDS_RAW


def needs_transformed(stored: bytes | None) -> bool:
    """True when reading ``stored`` needs the message's transformed content."""
    return stored is not None and bytes(stored[:1]) == TRANSFORMED_COPY


def unpack(stored: bytes | None, base: bytes | None = None, *,
           transformed: bytes | None = None) -> bytes | None:
    """The content back; ``base`` is the message's raw content and ``transformed`` its
    transformed content (each needed only when :func:`needs_raw` / :func:`needs_transformed`)."""
    if stored is None:
        return None
    stored = bytes(stored)
    kind, body = stored[:1], stored[1:]
    if kind == HL7:
        decompressor = zlib.decompressobj(-15, zdict=HL7_DICTIONARY)
        return decompressor.decompress(body) + decompressor.flush()
    if kind == DEFLATE:
        return zlib.decompress(body, -15)
    if kind == PLAIN:
        return body
    if kind == TRANSFORMED_COPY:
        if transformed is None:
            raise ValueError("stored content is a copy: its transformed message is needed")
        return transformed
    if kind in _NEEDS_RAW:
        if not base:
            raise ValueError("stored content is a delta: its raw message is needed to read it")
        if kind == RAW_COPY:
            return base
        zdict = HL7_DICTIONARY + base if kind == HL7_DELTA else base
        decompressor = zlib.decompressobj(-15, zdict=zdict)
        return decompressor.decompress(body) + decompressor.flush()
    raise ValueError(f"unknown stored content format {kind!r}")
