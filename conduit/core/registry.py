"""The registry: every source, destination and transform step kind, each spec beside its code.

As in Redpanda Connect, a component registers itself in its own module, with what the engine
must know about it declared rather than probed::

    @source("mllp", MllpSourceConfig, carries="hl7v2", summary="HL7 v2 listener ...")
    class MllpSource: ...

    @step("json-map", JsonMapOptions, needs=("json", "fhir"), summary="reshape JSON ...")
    class JsonMap: ...

The decorators fill :data:`REGISTRY`, the default instance. A :class:`Registry` is a plain
object, so a test builds its own (with a fake step, or the modules added in another order) and
the channel model, the loader and the JSON Schema are built from whichever instance they are
given. Which modules are loaded is the engine's business (:mod:`conduit.engine.components`):
this bottom layer imports no connector, step or engine code.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, TypeVar

from pydantic import BaseModel

from conduit.core.payload import DATA_TYPES, DataType
from conduit.core.protocols import Destination, Source

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A source kind: ``source: {type: <kind>}`` is validated by ``config`` and built as
    ``factory(config, context)``; its messages are ``carries`` unless the channel says."""

    kind: str
    config: type[BaseModel]
    factory: Callable[..., Any]
    carries: DataType
    summary: str
    module: str


@dataclass(frozen=True, slots=True)
class DestinationSpec:
    """A destination kind, built as ``factory(config, context)``.

    ``sends_correlation_id``: it sends the message's correlation id (``X-Request-Id``), so the
    engine reads the id back from the store for an envelope that lost it (recovery, reprocess).
    """

    kind: str
    config: type[BaseModel]
    factory: Callable[..., Any]
    summary: str
    module: str
    sends_correlation_id: bool = False


@dataclass(frozen=True, slots=True)
class StepSpec:
    """A transform step kind: the YAML key, its options model, ``factory(options)``.

    ``needs``: the data types it can work on (empty: any). ``hl7v2`` means the parsed HL7 v2
    message, which only an HL7 v2 channel has; the other types are the body's. ``produces``:
    the data type of the body after it (None: unchanged).
    """

    kind: str
    options: type[BaseModel]
    factory: Callable[[Any], Any]
    description: str
    summary: str
    module: str
    needs: tuple[DataType, ...] = ()
    produces: DataType | None = None


Spec = SourceSpec | DestinationSpec | StepSpec


class Registry:
    """The component kinds a channel may name, by kind; one instance per set of components."""

    def __init__(self) -> None:
        self._sources: dict[str, SourceSpec] = {}
        self._destinations: dict[str, DestinationSpec] = {}
        self._steps: dict[str, StepSpec] = {}
        self.version = 0
        """Bumped by every change, so what is built from a registry can tell it is stale."""

    # -- reading ------------------------------------------------------------------------------

    @property
    def sources(self) -> Mapping[str, SourceSpec]:
        return MappingProxyType(self._sources)

    @property
    def destinations(self) -> Mapping[str, DestinationSpec]:
        return MappingProxyType(self._destinations)

    @property
    def steps(self) -> Mapping[str, StepSpec]:
        return MappingProxyType(self._steps)

    def specs(self) -> list[Spec]:
        """Every spec, in registration order."""
        return [*self._sources.values(), *self._destinations.values(), *self._steps.values()]

    def specs_from(self, module: str) -> list[Spec]:
        """The specs registered by one module (to copy them into another registry)."""
        return [spec for spec in self.specs() if spec.module == module]

    # -- registering --------------------------------------------------------------------------

    def add(self, spec: Spec) -> None:
        """Add one spec; a kind registered twice by different code is a programming error."""
        table: dict[str, Any] = (self._sources if isinstance(spec, SourceSpec)
                                 else self._destinations if isinstance(spec, DestinationSpec)
                                 else self._steps)
        known = table.get(spec.kind)
        if known is not None and _name(known.factory) != _name(spec.factory):
            what = type(spec).__name__.removesuffix("Spec").lower()
            raise ValueError(f"{what} kind {spec.kind!r} is registered twice: by "
                             f"{_name(known.factory)} and by {_name(spec.factory)}")
        for data_type in (*getattr(spec, "needs", ()), getattr(spec, "produces", None),
                          getattr(spec, "carries", None)):
            if data_type is not None and data_type not in DATA_TYPES:
                raise ValueError(f"{spec.kind}: unknown data type {data_type!r}; one of: "
                                 f"{', '.join(DATA_TYPES)}")
        table[spec.kind] = spec
        self.version += 1

    def include(self, specs: Iterable[Spec]) -> None:
        for spec in specs:
            self.add(spec)

    def source(self, kind: str, config: type[BaseModel], *, carries: DataType,
               summary: str = "") -> Callable[[F], F]:
        """Register a source class (built as ``cls(config, context)``) under ``type: kind``."""

        def register(factory: F) -> F:
            self.add(SourceSpec(kind, config, factory, carries, summary or _doc(factory, kind),
                                factory.__module__))
            return factory

        return register

    def destination(self, kind: str, config: type[BaseModel], *,
                    sends_correlation_id: bool = False, summary: str = "") -> Callable[[F], F]:
        """Register a destination class (built as ``cls(config, context)``) under ``kind``."""

        def register(factory: F) -> F:
            self.add(DestinationSpec(kind, config, factory, summary or _doc(factory, kind),
                                     factory.__module__, sends_correlation_id))
            return factory

        return register

    def step(self, kind: str, options: type[BaseModel], *, needs: Iterable[DataType] = (),
             produces: DataType | None = None, summary: str = "") -> Callable[[F], F]:
        """Register a step class (built as ``cls(options)``) under the YAML key ``kind``."""

        def register(factory: F) -> F:
            description = _doc(factory, "") or _doc(options, kind)
            self.add(StepSpec(kind, options, factory, description, summary or description,
                              factory.__module__, tuple(needs), produces))
            return factory

        return register

    # -- building -----------------------------------------------------------------------------

    def build_source(self, config: Any, context: Any) -> Source:
        """The source object for a validated ``source:`` config."""
        built: Source = self._sources[config.type].factory(config, context)
        return built

    def build_destination(self, config: Any, context: Any) -> Destination:
        """The destination object for one validated ``destinations:`` entry."""
        built: Destination = self._destinations[config.type].factory(config, context)
        return built

    def build_step(self, kind: str, options: BaseModel) -> Any:
        """The step object for one configured step."""
        return self._steps[kind].factory(options)


def _doc(obj: object, default: str) -> str:
    lines = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return lines[0].strip() if lines else default


def _name(factory: Callable[..., Any]) -> str:
    return f"{factory.__module__}.{getattr(factory, '__qualname__', factory)}"


REGISTRY = Registry()
"""The default instance, filled by the decorators below as the engine imports each module."""

source = REGISTRY.source
destination = REGISTRY.destination
step = REGISTRY.step
