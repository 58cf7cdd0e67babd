"""Loading the components: the one place that finds connectors and transform steps.

Every module of the :mod:`conduit.connectors` and :mod:`conduit.transforms` packages is
imported (:func:`pkgutil.iter_modules`); a module that defines a component registers it with
the decorators of :mod:`conduit.core.registry`. So a new connector or step kind is one new
module (plus its test) in one of those packages: no list to extend anywhere.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Iterable

from conduit.core.registry import REGISTRY, Registry

PACKAGES: tuple[str, ...] = ("conduit.connectors", "conduit.transforms")
"""The packages whose modules may register components."""


def component_modules(packages: Iterable[str] = PACKAGES) -> list[str]:
    """Every module name in ``packages``, sorted (importing a package is cheap and harmless)."""
    names: list[str] = []
    for package in packages:
        path = importlib.import_module(package).__path__
        names.extend(f"{package}.{info.name}" for info in pkgutil.iter_modules(path))
    return sorted(names)


def load_components(registry: Registry | None = None,
                    modules: Iterable[str] | None = None) -> Registry:
    """Import ``modules`` (default: :func:`component_modules`) and answer a filled registry.

    Importing registers each module's components in the default instance
    (:data:`~conduit.core.registry.REGISTRY`); another ``registry`` gets a copy of what each
    module registered, in the order given.
    """
    target = REGISTRY if registry is None else registry
    for name in component_modules() if modules is None else modules:
        importlib.import_module(name)
        if target is not REGISTRY:
            target.include(REGISTRY.specs_from(name))
    return target


@functools.cache
def default_registry() -> Registry:
    """The default registry with every component module loaded (once per process)."""
    return load_components()
