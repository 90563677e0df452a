"""The registry of steps, derived from the step classes themselves.

Built-in steps are the :class:`~minisim.steps.base.StepSpec` subclasses of this package;
steps of other packages join through the ``minisim.steps`` entry point group (each entry
names a step class). The canonical order, the stage names and the spec's JSON union all
follow from the classes: registering a step is defining it.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points

from .base import StepSpec

#: The entry point group through which other packages add steps.
ENTRY_POINT_GROUP = "minisim.steps"


def _concrete_subclasses(cls) -> list[type[StepSpec]]:
    found = []
    for sub in cls.__subclasses__():
        if "kind" in sub.model_fields and sub.model_fields["kind"].default is not None:
            if isinstance(sub.model_fields["kind"].default, str) and hasattr(sub, "order"):
                found.append(sub)
        found.extend(_concrete_subclasses(sub))
    return found


def builtin_steps() -> tuple[type[StepSpec], ...]:
    """The steps defined in :mod:`minisim.steps`."""
    return tuple(c for c in _concrete_subclasses(StepSpec) if c.__module__.startswith(__package__))


@functools.cache
def plugin_steps() -> tuple[type[StepSpec], ...]:
    """Steps other installed packages register under the ``minisim.steps`` entry points."""
    found = []
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        cls = entry.load()
        if not (isinstance(cls, type) and issubclass(cls, StepSpec)):
            raise TypeError(
                f"entry point {entry.name} = {entry.value} in group {ENTRY_POINT_GROUP!r} is "
                f"not a minisim step class (a StepSpec subclass)"
            )
        found.append(cls)
    return tuple(found)


@functools.cache
def registered_steps() -> tuple[type[StepSpec], ...]:
    """Every step class, built-in and plugin, in canonical (light-path) order."""
    steps = [*builtin_steps(), *plugin_steps()]
    by_kind: dict[str, type[StepSpec]] = {}
    for cls in steps:
        kind = cls.kind_name()
        if kind in by_kind and by_kind[kind] is not cls:
            raise ValueError(f"two step classes claim kind {kind!r}: {by_kind[kind]} and {cls}")
        by_kind[kind] = cls
    return tuple(sorted(by_kind.values(), key=lambda c: (c.order, c.kind_name())))


def step_class(kind: str) -> type[StepSpec]:
    """The registered step class of a kind."""
    for cls in registered_steps():
        if cls.kind_name() == kind:
            return cls
    raise KeyError(f"no step of kind {kind!r} is registered")


def stage_aliases() -> dict[str, str]:
    """Names accepted by ``until=`` and ``Recording.stage``: kinds and stage names."""
    aliases = {}
    for cls in registered_steps():
        aliases[cls.kind_name()] = cls.stage_of()
        aliases[cls.stage_of()] = cls.stage_of()
    return aliases


def providers_of(wanted) -> list[type[StepSpec]]:
    """The registered steps that always provide a quantity."""
    return [cls for cls in registered_steps() if wanted in cls.provided_quantities(optional=False)]


def canonical_order(steps):
    """Step instances sorted by their class's ``order``, then kind (two steps of other
    packages may share an order: the listing must still not matter)."""
    return sorted(steps, key=lambda step: (type(step).order, step.kind))
