"""The bottom layer: errors, durations, payloads, the protocols and the registry that every
other layer shares. It imports nothing else of Conduit."""
