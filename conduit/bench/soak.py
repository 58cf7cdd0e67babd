"""``conduit bench --soak DURATION --rate R``: a fixed offered load for a long time, read window by
window (a minute each), and whether anything creeps up.

Leaks and slow build-ups (a queue that drains a little slower than it fills, memory that is never
given back, a statement that slows as the store grows) hide in a benchmark of seconds. A soak
offers the same load for minutes or hours and reads, every window: ACK p50 and p99,
messages/s acknowledged and delivered (the engine's own ``/metrics``), the engine's RSS (all its
processes) and the depth of its queues. The verdict compares the last third of the windows with
the first third (the first window, the warm-up's tail, left out when there are enough): a series
that rose by more than a fifth and by more than its floor (noise on a shared machine) trends
upward; delivering less than 95% of the offered rate at the end is falling behind.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import IO, Any

from conduit.bench.runner import CHANNEL, Options, process_tree, run_load, running_engine

#: A rise smaller than this is noise, whatever its share (ms, ms, MB, envelopes).
FLOORS = {"ack_p50_ms": 1.0, "ack_p99_ms": 2.0, "rss_mb": 10.0, "queue_depth": 100.0}
RISE = 1.2
KEEPS_UP = 0.95


#: The standard channel's deliveries to its MLLP receiver on ``/metrics``: one per message
#: (the file destination's, its other one, go at the same pace). Not ``conduit_messages_sent``,
#: which counts a message twice when its two deliveries settle in one group commit.
DELIVERED = (f'conduit_deliveries_total{{channel="{CHANNEL}",destination="downstream",'
             f'status="SENT"}}')


def engine_metrics(port: int) -> tuple[float, float]:
    """Messages the standard channel has delivered downstream so far, and the envelopes waiting
    in its queues (dead letters apart), from the engine's ``/metrics``."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    sent = depth = 0.0
    for line in text.splitlines():
        if line.startswith(DELIVERED + " "):
            sent = float(line.rsplit(" ", 1)[1])
        elif line.startswith("conduit_queue_depth{") and not line.split(" ")[0].endswith(
                '.dlq"}'):
            depth += float(line.rsplit(" ", 1)[1])
    return sent, depth


def rss_mb(pid: int) -> float:
    """The resident memory of a process and its descendants, now."""
    total = 0
    for member in process_tree(pid):
        try:
            for line in Path(f"/proc/{member}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def trends(windows: list[dict[str, float]], rate: float) -> dict[str, bool]:
    """Which series trend upward (see the module docstring), and ``falls behind``."""
    series = windows[1:] if len(windows) > 3 else windows
    third = max(1, len(series) // 3)
    first, last = series[:third], series[-third:]
    verdict = {}
    for key, floor in FLOORS.items():
        before = statistics.median(w[key] for w in first)
        after = statistics.median(w[key] for w in last)
        verdict[key] = after > before * RISE and after - before > floor
    verdict["falls behind"] = statistics.median(
        w["delivered_per_s"] for w in last) < KEEPS_UP * rate
    return verdict


def soak(options: Options, duration: float, window: float = 60.0,
         out: IO[str] = sys.stdout) -> dict[str, Any]:
    """Offer ``options.rate`` for ``duration`` seconds, read every ``window`` seconds."""
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    assert options.rate, "a soak offers a fixed rate"
    count = max(1, round(duration / window))
    per_window = max(1, round(options.rate * window))
    say(f"conduit bench --soak: bus={options.bus} store={options.store} "
        f"rate={options.rate:g}/s for {count} windows of {window:g} s")
    windows: list[dict[str, float]] = []
    with running_engine(options) as running:
        run_load(running.port, options.warmup, options.connections, "W", None)
        running.downstream.wait_for(options.warmup)
        sent_before, _ = engine_metrics(running.metrics_port)
        read_at = time.monotonic()
        for index in range(count):
            load = run_load(running.port, per_window, options.connections, f"S{index:03d}",
                            options.rate)
            sent, depth = engine_metrics(running.metrics_port)
            now = time.monotonic()
            current = {"window": index + 1, "ack_p50_ms": load.percentile(50) * 1000,
                       "ack_p99_ms": load.percentile(99) * 1000, "acked_per_s": load.rate,
                       "delivered_per_s": (sent - sent_before) / (now - read_at),
                       "rss_mb": rss_mb(running.engine.pid), "queue_depth": depth,
                       "not_aa": load.not_aa}
            sent_before, read_at = sent, now
            windows.append(current)
            label = f"minute {index + 1}" if window == 60 else f"window {index + 1}"
            say(f"{label}: ACK p50 {current['ack_p50_ms']:.2f} ms, p99 "
                f"{current['ack_p99_ms']:.2f} ms; {current['acked_per_s']:,.0f} msg/s "
                f"acknowledged, {current['delivered_per_s']:,.0f} delivered; RSS "
                f"{current['rss_mb']:.0f} MB; queue depth {depth:.0f}; not AA {load.not_aa}")
    verdict = trends(windows, options.rate)
    rising = [key for key in FLOORS if verdict[key]]
    summary = ("stable: nothing trends upward" if not rising
               else "trends upward: " + ", ".join(rising))
    if verdict["falls behind"]:
        summary += f"; falls behind (delivers under {KEEPS_UP:.0%} of the offered rate)"
    say(f"soak verdict: {summary} (last third of the windows against the first)")
    result = {"soak": {"rate": options.rate, "window_s": window,
                       "windows": [{k: round(v, 3) for k, v in w.items()} for w in windows],
                       "trends_upward": {k: verdict[k] for k in FLOORS},
                       "falls_behind": verdict["falls behind"], "verdict": summary}}
    say(json.dumps(result))
    return result
