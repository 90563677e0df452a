"""Keyed random streams: every draw comes from a generator named by what it is.

A stream is identified by ``(seed, kind, purpose, *index)``. Because no generator is
shared and nothing depends on the order in which draws happen, any block of frames or
any cell can be recomputed alone, on any worker, any number of times.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_id(name: str) -> int:
    """A 64-bit integer for a name, identical across processes and Python versions.

    Python's ``hash`` is salted per process, so it cannot key random streams.
    """
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def stream(seed: int, kind: str, purpose: str, *index: int) -> np.random.Generator:
    """The generator for one named purpose of one step, optionally for one index.

    Parameters
    ----------
    seed : int
        The spec's master seed (non-negative).
    kind : str
        The step kind drawing the numbers, e.g. ``"cell_activity"``.
    purpose : str
        What the numbers are for within the step, e.g. ``"gain"``.
    *index : int
        Non-negative integers such as a cell, block or frame index.
    """
    entropy = [int(seed), stable_id(kind), stable_id(purpose), *(int(i) for i in index)]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


def raw_words(generator: np.random.Generator, compiled: bool = True):
    """``n ↦`` the generator's next ``n`` raw 64-bit words (``bit_generator.random_raw``).

    With ``compiled`` (numba installed) and PCG64 (every keyed stream), the same words come
    from a compiled loop at about half numpy's cost; the samplers pass ``compiled`` from
    their own backend switch.
    """
    bit_generator = generator.bit_generator
    if compiled and type(bit_generator) is np.random.PCG64:
        from ._words_numba import pcg64_words

        return lambda n: pcg64_words(bit_generator, n)
    return bit_generator.random_raw
