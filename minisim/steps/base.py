"""What every step spec shares: frozen parameters plus a lazy graph builder."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, ClassVar

from ..acquisition import FrozenModel
from ..errors import SpecWarning
from .catalog import INFO, StepInfo

if TYPE_CHECKING:
    from ..acquisition import Acquisition
    from ..engine import Scene


class StepSpec(FrozenModel):
    """Base of the step models. Subclasses set ``kind`` (a Literal) and ``build``."""

    kind: str

    #: Does this step write pixels? Composite and later steps do; cell-domain steps don't.
    writes_movie: ClassVar[bool] = False

    @classmethod
    def info(cls) -> StepInfo:
        return INFO[cls.model_fields["kind"].default]

    @property
    def stage(self) -> str:
        return INFO[self.kind].stage

    @property
    def active(self) -> bool:
        """Does this step do anything? (An inert step needs none of its inputs.)"""
        return True

    @property
    def domain(self) -> str:
        return INFO[self.kind].domain

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

    def prepare(self, scene: Scene) -> Scene:
        """Before any pixel work: build this step's whole-recording statistics (lazily).

        Statistics registered in ``scene.statistics`` are computed before pixel chunks,
        which keeps memory bounded when a per-frame step depends on all frames.
        """
        return scene

    def build(self, scene: Scene) -> Scene:
        """Return a new scene with this step's lazy nodes added. Never computes frames."""
        raise NotImplementedError


def warn_spec(message: str) -> None:
    # warn_spec ← check_in_spec ← Spec validator ← BaseModel.__init__ ← the user's Spec(...)
    warnings.warn(message, SpecWarning, stacklevel=5)
