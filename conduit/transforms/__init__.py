"""Transforms: declarative filters (``filter.py``), the Jinja2 environment (``template.py``) and
the transform step kinds, one module each, found through ``registry.py``."""
