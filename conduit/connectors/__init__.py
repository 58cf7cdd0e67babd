"""Connectors, one module per protocol. Importing this package registers every one of them."""

from conduit.connectors import fhir, file, http, mllp  # noqa: F401  (registration side effects)
