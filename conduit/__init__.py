"""Conduit: an open-source integration engine for healthcare."""

__version__ = "0.1.0"
