"""Segment maps: one module per resource, each a function ``(ctx, seg)`` named after its segment.

:data:`conduit.fhir.maps.MAPS` says which function handles which segment.
"""
