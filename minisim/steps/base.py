"""The step contract: frozen parameters, declared inputs and outputs, a lazy graph builder.

A step is a pydantic model whose class declares, besides its parameters:

* ``kind`` — its unique name (a ``Literal`` field, the discriminator in spec JSON);
* ``order`` — where it sits on the light's path (cells → tissue → motion → scope →
  sensor); specs are sorted by it, so listing order never matters;
* ``stage`` — the name of the movie snapshot after it (defaults to ``kind``);
* ``needs`` — the quantities (names in :mod:`minisim.schema`) it cannot build without; a
  spec lacking their provider is an error naming the step to add;
* ``reads`` — quantities it uses when another step provides them;
* ``provides`` — the quantities it adds (names, or :class:`~minisim.schema.Quantity`
  objects for new ones); the engine checks after building that they are there.

``build(scene)`` adds the step's lazy nodes to an immutable scene and computes nothing
frame-sized. It wires plain numpy kernels into the graph through the scene — a pixel
kernel for a block of frames (``scene.pixel_map``), a cheap per-frame kernel
(``scene.frame_map``), a whole-recording statistic (``scene.statistic``), a recurrence
with carried state (``minisim.engine.scan``), small cell-domain work (``scene.cell_call``)
— and the engine decides how they are scheduled: which blocks are shared, which are
recomputed where they are read, and that one task per frame chunk runs the whole pixel
chain. Built-in steps live in this package; another package registers its steps
through the ``minisim.steps`` entry point group (see ``docs/howto/plugin_step.md``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, ClassVar

from ..acquisition import FrozenModel
from ..errors import SpecWarning, user_stacklevel
from ..schema import Quantity, quantity, register

if TYPE_CHECKING:
    from ..acquisition import Acquisition
    from ..engine import Scene


def as_quantity(item: str | Quantity) -> Quantity:
    return item if isinstance(item, Quantity) else quantity(item)


class StepSpec(FrozenModel):
    """Base of the step models. Subclasses set ``kind`` (a Literal), ``order`` and
    ``build``, and declare ``needs``/``reads``/``provides``."""

    kind: str

    #: Position on the light's path; steps run in increasing order.
    order: ClassVar[float]
    #: Name of the movie snapshot after this step (``None``: the kind).
    stage_name: ClassVar[str | None] = None
    #: Quantities this step cannot build without.
    needs: ClassVar[tuple[str, ...]] = ()
    #: Quantities this step uses when they are present.
    reads: ClassVar[tuple[str, ...]] = ()
    #: Quantities this step adds (names of known quantities, or new Quantity objects).
    provides: ClassVar[tuple[str | Quantity, ...]] = ()
    #: Quantities this step adds only in some configurations (e.g. with an optional input).
    may_provide: ClassVar[tuple[str | Quantity, ...]] = ()
    #: Does this step write pixels? Composite and later steps do; cell-domain steps don't.
    writes_movie: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for item in (*cls.__dict__.get("provides", ()), *cls.__dict__.get("may_provide", ())):
            if isinstance(item, Quantity):
                register(item)

    @classmethod
    def kind_name(cls) -> str:
        """The step's ``kind`` (its discriminator value)."""
        return cls.model_fields["kind"].default

    @classmethod
    def stage_of(cls) -> str:
        return cls.stage_name or cls.kind_name()

    @classmethod
    def provided_quantities(cls, *, optional: bool = True) -> tuple[Quantity, ...]:
        """The declared outputs (with ``optional``, also those it may provide)."""
        items = (*cls.provides, *(cls.may_provide if optional else ()))
        return tuple(as_quantity(item) for item in items)

    @classmethod
    def needed_quantities(cls) -> tuple[Quantity, ...]:
        return tuple(as_quantity(item) for item in cls.needs)

    @property
    def stage(self) -> str:
        return self.stage_of()

    @property
    def active(self) -> bool:
        """Does this step do anything? (An inert step needs none of its inputs.)"""
        return True

    def margin_px(self, acquisition: Acquisition) -> int:
        """Extra canvas pixels this step needs on each side of the field of view."""
        return 0

    def photon_field(self, acquisition: Acquisition):
        """A static (y, x) field multiplying the light the sensor collects, or None."""
        return None

    def excitation_field(self, acquisition: Acquisition):
        """A static (y, x) map of the excitation reaching the tissue, or None."""
        return None

    def check_in_spec(self, spec) -> None:
        """Cross-field rules between this step and the rest of the spec.

        Raise ``ValueError`` for invalid combinations; warn :class:`SpecWarning` for
        legal but unusual ones.
        """

    def build(self, scene: Scene) -> Scene:
        """Return a new scene with this step's lazy nodes added. Never computes frames."""
        raise NotImplementedError


def warn_spec(message: str) -> None:
    # warn_spec ← check_in_spec ← Spec validator ← BaseModel.__init__ ← the user's Spec(...)
    warnings.warn(message, SpecWarning, stacklevel=user_stacklevel())
