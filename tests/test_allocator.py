"""The malloc tuning for chunk-sized arrays: applied on glibc, never against the user's say."""

from __future__ import annotations

import os
import sys

import pytest

from minisim.engine import allocator


def test_user_opt_out_and_own_malloc_settings_are_respected(monkeypatch):
    monkeypatch.setenv("MINISIM_SYSTEM_MALLOC", "1")
    assert allocator._tune() is False
    monkeypatch.delenv("MINISIM_SYSTEM_MALLOC")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert allocator._tune() is False
    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")
    assert allocator._tune() is False
    monkeypatch.delenv("MALLOC_ARENA_MAX")
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.trim_threshold=0")
    assert allocator._tune() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_accepts_every_setting(monkeypatch):
    for name in [n for n in os.environ if n.startswith("MALLOC_")]:
        monkeypatch.delenv(name)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    monkeypatch.delenv("MINISIM_SYSTEM_MALLOC", raising=False)
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt  # noqa: B018
    except (OSError, AttributeError):
        pytest.skip("not glibc")
    assert allocator._tune() is True
    assert allocator.reuse_freed_arrays() in (True, False)  # once per process, cached
