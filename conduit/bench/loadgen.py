"""The load generator: N concurrent MLLP connections, ACK latency of every message.

Closed loop by default (each connection sends its next message when the last is acknowledged);
with a rate, an open schedule spread across the connections, so latency is measured at a fixed
offered load rather than at saturation.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

START, END = b"\x0b", b"\x1c\x0d"

TEMPLATE = (
    "MSH|^~\\&|REGADT|GOODHEALTH|CONDUIT|BENCH|20260101083000||ADT^A01^ADT_A01|{id}|P|2.5.1\r"
    "EVN|A01|20260101083000|||OP123^Operator^Olga\r"
    "PID|1||{pid}^^^GOODHEALTH^MR~{pid}9^^^SSA^SS||Doe^Jane^Q^^^^L||19800101|F|||"
    "1 Example Street^^Springfield^ST^00000^USA^H||555-0100^PRN^PH|||M|CHR|{pid}77\r"
    "NK1|1|Doe^John|SPO^Spouse^HL70063|1 Example Street^^Springfield^ST^00000|555-0101\r"
    "PV1|1|I|WARD1^101^A^GOODHEALTH||||1234^Care^Carl^^^Dr|5678^Refer^Rita|||MED|||||||"
    "1234^Care^Carl^^^Dr|IN|V{pid}|||||||||||||||||||||||||20260101083000\r"
    "OBX|1|NM|8867-4^Heart rate^LN||72|/min^per minute^UCUM|60-100|N|||F\r"
    "AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives\r"
    "DG1|1||I10^Essential hypertension^I10|||A\r"
)


def message(n: int, run: str) -> bytes:
    return TEMPLATE.format(id=f"{run}{n:08d}", pid=100000 + n % 50000).encode()


@dataclass
class LoadResult:
    sent: int
    acked: int
    not_aa: int
    started: float
    finished: float
    latencies: list[float] = field(default_factory=list)

    @property
    def elapsed(self) -> float:
        return self.finished - self.started

    @property
    def rate(self) -> float:
        return self.acked / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


async def drive(port: int, total: int, connections: int, run: str,
                rate: float | None = None, host: str = "127.0.0.1") -> LoadResult:
    """Send ``total`` messages over ``connections`` connections; time every ACK."""
    result = LoadResult(0, 0, 0, 0.0, 0.0)
    counter = iter(range(total))
    loop = asyncio.get_running_loop()
    interval = connections / rate if rate else 0.0

    async def connection(index: int) -> None:
        reader, writer = await asyncio.open_connection(host, port, limit=2**24)
        next_at = loop.time() + (index * interval / connections if interval else 0.0)
        try:
            for n in counter:
                if interval:
                    delay = next_at - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    next_at += interval
                payload = START + message(n, run) + END
                sent_at = time.perf_counter()
                writer.write(payload)
                result.sent += 1
                answer = await reader.readuntil(END)
                result.latencies.append(time.perf_counter() - sent_at)
                if b"MSA|AA|" in answer:
                    result.acked += 1
                else:
                    result.not_aa += 1
        finally:
            writer.close()

    result.started = time.time()
    await asyncio.gather(*(connection(i) for i in range(connections)))
    result.finished = time.time()
    return result
