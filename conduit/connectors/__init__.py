"""Connectors, one module per protocol. Importing this package registers every one of them."""

from conduit.connectors import (  # noqa: F401  (registration side effects)
    database,
    fhir,
    file,
    http,
    mllp,
    soap,
)
