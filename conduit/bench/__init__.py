"""``conduit bench``: the engine's throughput and latency next to a baseline from the same run."""
