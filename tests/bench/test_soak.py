"""``conduit bench --soak``: a fixed offered load read window by window, and a verdict on trends."""

from __future__ import annotations

import json
import subprocess
import sys

from conduit.bench.soak import trends


def _window(p99: float, rss: float = 170.0, depth: float = 0.0,
            delivered: float = 1000.0) -> dict[str, float]:
    return {"ack_p50_ms": 1.0, "ack_p99_ms": p99, "rss_mb": rss, "queue_depth": depth,
            "delivered_per_s": delivered}


def test_the_verdict_compares_the_last_third_with_the_first() -> None:
    flat = [_window(5.0 + (i % 2)) for i in range(10)]
    assert not any(trends(flat, 1000).values())
    # the first window (the warm-up's tail) is left out: a slow start is no trend
    assert not any(trends([_window(50.0), *flat[1:]], 1000).values())
    creeping = [_window(5.0, rss=170.0 + 8 * i, depth=40.0 * i) for i in range(10)]
    verdict = trends(creeping, 1000)
    assert verdict["rss_mb"] and verdict["queue_depth"] and not verdict["ack_p99_ms"]
    # a rise under its floor is noise, whatever its share (0.5 -> 1.2 ms)
    assert not trends([_window(0.5)] * 5 + [_window(1.2)] * 5, 1000)["ack_p99_ms"]
    assert trends([_window(5.0, delivered=900.0)] * 4, 1000)["falls behind"]


def test_soak_prints_each_window_and_a_verdict() -> None:
    result = subprocess.run([sys.executable, "-m", "conduit", "bench", "--soak", "6s",
                             "--soak-window", "2", "--rate", "150", "--warmup", "100"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert [line.split(":")[0] for line in lines if line.startswith("window ")] == [
        "window 1", "window 2", "window 3"]
    assert any(line.startswith("soak verdict: ") for line in lines)
    soak = json.loads(lines[-1])["soak"]
    assert soak["rate"] == 150 and len(soak["windows"]) == 3
    for window in soak["windows"]:
        assert window["not_aa"] == 0 and window["rss_mb"] > 0
        assert 100 < window["acked_per_s"] < 200 and window["delivered_per_s"] > 100
    assert set(soak["trends_upward"]) == {"ack_p50_ms", "ack_p99_ms", "rss_mb", "queue_depth"}


def test_soak_needs_a_rate() -> None:
    result = subprocess.run([sys.executable, "-m", "conduit", "bench", "--soak", "1m"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "give --rate too" in result.stderr
