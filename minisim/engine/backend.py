"""One switch for every compiled kernel: numba (the ``fast`` extra) or numpy, same bytes.

Each compiled kernel (the Poisson and normal samplers, PCG64's words, the composite's level
pass, the optics' product, the motion shift, the sensor's pass) has a numpy twin that
gives identical bytes, so the switch changes speed only. ``MINISIM_KERNELS=numpy`` runs
the twins (to compare, or where numba cannot run), ``numba`` insists on the compiled
kernels, and unset (``auto``) uses numba when it imports. ``MINISIM_POISSON_BACKEND``, the
switch's first name, is still read when ``MINISIM_KERNELS`` is unset. The variables are
read where the kernels run: set them for a cluster's workers, not only in the client.
"""

from __future__ import annotations

import os

ENV = "MINISIM_KERNELS"
FORMER_ENV = "MINISIM_POISSON_BACKEND"
CHOICES = ("auto", "numba", "numpy")
INSTALL = 'pip install "minisim[fast]" (from the source tree: pip install ".[fast]")'

_numba_imports: bool | None = None  # None: not tried yet in this process


def requested(name: str | None = None) -> str:
    """The choice in force: ``name`` when given, else the environment, else "auto"."""
    sources = [
        ("backend", name),
        (ENV, os.environ.get(ENV)),
        (FORMER_ENV, os.environ.get(FORMER_ENV)),
    ]
    source, choice = next(((s, c) for s, c in sources if c), ("default", "auto"))
    if choice not in CHOICES:
        where = f"{source}={choice!r}"
        raise ValueError(
            f"{where} is not a kernel choice: use one of {', '.join(CHOICES)} "
            "(or leave it unset to use numba when installed)"
        )
    return choice


def compiled(name: str | None = None) -> bool:
    """Whether the compiled kernels run (``name``: "auto", "numba", "numpy" or None)."""
    choice = requested(name)
    if choice == "numpy":
        return False
    if _numba_works():
        return True
    if choice == "numba":
        raise ImportError(f"the compiled kernels need numba: {INSTALL}")
    return False


def kernels_name(name: str | None = None) -> str:
    """ "numba" or "numpy": the kernels that run for this choice."""
    return "numba" if compiled(name) else "numpy"


def _numba_works() -> bool:
    global _numba_imports
    if _numba_imports is None:  # a failed import is not retried on every call
        try:
            import numba  # noqa: F401
        except ImportError:
            _numba_imports = False
        else:
            _numba_imports = True
    return _numba_imports
