"""Connectors, one module per protocol, each registering its source and/or destination with
:mod:`conduit.core.registry`; the engine imports them all (:mod:`conduit.engine.components`)."""
