"""What to simulate: the acquisition, the seed, the steps, and output options."""

from __future__ import annotations

import difflib
import hashlib
import warnings
from typing import Annotated, Literal, Union

from pydantic import Field, field_validator, model_validator

from .acquisition import Acquisition, FrozenModel
from .errors import SpecWarning, user_stacklevel
from .limits import check_spec_size
from .steps.registry import (
    ENTRY_POINT_GROUP,
    canonical_order,
    providers_of,
    registered_steps,
    stage_aliases,
)

#: Any registered step model (built-in or from a plugin), discriminated by its ``kind``.
AnyStep = Annotated[Union[registered_steps()], Field(discriminator="kind")]  # noqa: UP007

__all__ = ["AnyStep", "Output", "Spec", "SpecWarning"]


def check_needs(steps) -> None:
    """Every quantity an active step needs is provided by an earlier active step.

    Raises a ``ValueError`` naming the step, what it needs and the step to add.
    """
    provided = set()
    for step in steps:
        if not step.active:
            continue
        for need in type(step).needed_quantities():
            if need not in provided:
                adds = " or ".join(
                    f"{c.__name__}() (kind {c.kind_name()!r})" for c in providers_of(need)
                )
                raise ValueError(
                    f"steps: {step.kind} needs {need.label} ({need.name}): add "
                    f"{adds or 'a step providing it'}"
                )
        provided.update(type(step).provided_quantities())


class Output(FrozenModel):
    """Output options.

    Parameters
    ----------
    save_intermediates : bool
        Keep a (lazy, free until computed) snapshot of the movie after every stage that
        writes pixels, available as ``rec.stage(name)``.
    store_dtype : "float32" or "float64"
        Dtype of the intensity movie when there is no sensor.
    """

    save_intermediates: bool = False
    store_dtype: Literal["float32", "float64"] = "float32"


class Spec(FrozenModel):
    """A complete, serializable description of one recording.

    ``steps`` may be listed in any order: they are stored in the canonical physical
    order (cells → tissue → motion → sensor), so listing order never changes results.
    """

    acquisition: Acquisition = Acquisition()
    seed: Annotated[int, Field(ge=0)] = 42
    steps: tuple[AnyStep, ...]
    output: Output = Output()

    @field_validator("steps", mode="before")
    @classmethod
    def _known_kinds(cls, steps):
        known = [c.kind_name() for c in registered_steps()]
        for i, step in enumerate(steps if isinstance(steps, list | tuple) else ()):
            kind = step.get("kind") if isinstance(step, dict) else None
            if isinstance(kind, str) and kind not in known:
                close = difflib.get_close_matches(kind, known, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                raise ValueError(
                    f"steps[{i}].kind={kind!r} is not a registered step: {hint}the kinds are "
                    f"{', '.join(known)}; a step from another package works once that package "
                    f"is installed (pip install it: it registers through the "
                    f"{ENTRY_POINT_GROUP!r} entry point group)"
                )
        return steps

    @field_validator("steps", mode="after")
    @classmethod
    def _canonical_order(cls, steps):
        kinds = [step.kind for step in steps]
        duplicates = sorted({k for k in kinds if kinds.count(k) > 1})
        if duplicates:
            raise ValueError(
                f"steps lists {', '.join(duplicates)} more than once: each kind is unique in a spec"
            )
        return tuple(canonical_order(steps))

    @model_validator(mode="after")
    def _cross_field_rules(self):
        check_needs(self.steps)
        for step in self.steps:
            step.check_in_spec(self)
        _warn_empty_pipelines({s.kind for s in self.steps})
        check_spec_size(self)  # sizes last: the physical rules above name the field first
        return self

    def step(self, kind: str):
        """The step of a kind, or None if the spec does not include it."""
        return next((s for s in self.steps if s.kind == kind), None)

    @property
    def stage_names(self) -> list[str]:
        """Stage names of the steps, in order (composite's stage is ``cells_only``)."""
        return [s.stage for s in self.steps]

    def resolve_stage(self, name: str) -> str:
        """The stage name for a stage or kind name of this spec; raises if unknown."""
        stage = stage_aliases().get(name)
        if stage is None or stage not in self.stage_names:
            valid = sorted(set(self.stage_names) | {s.kind for s in self.steps})
            raise ValueError(f"unknown stage {name!r}: this spec's stages are {valid}")
        return stage

    def cache_key(self) -> str:
        """First 16 hex digits of the SHA-256 of the compact JSON: stable across runs."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


def _warn_empty_pipelines(present: set[str]) -> None:
    """Legal specs whose movie can only lack the cells they describe."""
    if {"place_neurons", "cell_activity"} <= present and "composite" not in present:
        warnings.warn(
            "steps: the cells have positions and calcium traces but there is no composite "
            "step, so no cell reaches the movie (it is black without other light): add "
            "Composite() (or ignore this if you only want the cells' ground truth)",
            SpecWarning,
            stacklevel=user_stacklevel(),
        )
    elif "composite" in present and "cell_activity" not in present:
        warnings.warn(
            "steps: composite draws cells by their calcium traces, but there is no "
            "cell_activity step, so the cells stay dark: add CellActivity()",
            SpecWarning,
            stacklevel=user_stacklevel(),
        )
