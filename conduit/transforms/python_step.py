"""The ``python`` step: the documented escape hatch, ``python: module:function``.

For the rare case no declarative step covers. The function is imported when the channel loads
(an import error or a missing function is a channel error, not a message error) and called
with the :class:`~conduit.transforms.registry.StepState`: it may change ``state.message`` in
place, set ``state.body`` or ``state.variables``, or return a string, which becomes the body.
It raises to fail the message (MessageError for "this message is bad").

``module`` is an importable module (``mycompany.transforms``) or a ``.py`` file relative to the
channel file (``scripts/fix_names.py:fix``). It runs in the engine's process with the engine's
rights: review it as you would the engine's own code. Keep it free of per-message I/O, as the
other steps are, and never log message content above DEBUG.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from typing import Any

from pydantic import Field, PrivateAttr, ValidationInfo, model_validator

from conduit.core.registry import step
from conduit.transforms.channelfiles import channel_path
from conduit.transforms.registry import StepOptions, StepState


class PythonOptions(StepOptions):
    """Call a Python function (module:function) with the step state: the escape hatch."""

    function: str = Field(
        description="module:function, or path/to/file.py:function relative to the channel.",
        examples=["hospital.transforms:fix_names", "scripts/fix_names.py:fix"])
    _callable: Callable[[StepState], Any] | None = PrivateAttr(None)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        """``python: mod:func`` (a string) means ``python: {function: mod:func}``."""
        return {"function": data} if isinstance(data, str) else data

    @model_validator(mode="after")
    def _import(self, info: ValidationInfo) -> PythonOptions:
        module_name, sep, attr = self.function.rpartition(":")
        if not sep or not module_name or not attr.isidentifier():
            raise ValueError(f"{self.function!r}: expected module:function")
        if module_name.endswith(".py"):
            path = channel_path(module_name, info.context)
            spec = importlib.util.spec_from_file_location(f"conduit_channel_{path.stem}", path)
            if spec is None or spec.loader is None or not path.is_file():
                raise ValueError(f"cannot load {str(path)!r}")
            module = importlib.util.module_from_spec(spec)
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                raise ValueError(f"{module_name}: {type(exc).__name__}: {exc}") from None
        else:
            try:
                module = sys.modules.get(module_name) or importlib.import_module(module_name)
            except ImportError as exc:
                raise ValueError(f"cannot import {module_name!r}: {exc}") from None
        func = getattr(module, attr, None)
        if not callable(func):
            raise ValueError(f"{module_name} has no function {attr!r}")
        self._callable = func
        return self

    @property
    def callable(self) -> Callable[[StepState], Any]:
        assert self._callable is not None
        return self._callable


@step("python", PythonOptions,
      summary="`module:function`, the escape hatch for what needs code")
class PythonStep:
    """Call a Python function (module:function) with the step state: the escape hatch."""

    def __init__(self, options: PythonOptions) -> None:
        self.label = f"python {options.function}"
        self._func = options.callable

    def __call__(self, state: StepState) -> None:
        result = self._func(state)
        if isinstance(result, str):
            state.body = result
