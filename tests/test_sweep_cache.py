"""Sweeps over dotted paths, batch generation with a manifest, and the store-backed cache."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from minisim import (
    CellActivity,
    Composite,
    PlaceNeurons,
    Spec,
    cache_path,
    generate,
    open_recording,
    simulate_cached,
    sweep,
)
from minisim.io.zarr_store import is_complete

from .conftest import small_acquisition

BASE = Spec(acquisition=small_acquisition(px=24, duration_s=0.5), seed=1,
            steps=[PlaceNeurons(), CellActivity(), Composite()])  # fmt: skip


def test_product_order_and_paths():
    specs = list(
        sweep(BASE, {"seed": [1, 2], "steps.place_neurons.density_per_mm3": [1e4, 2e4, 3e4]})
    )
    assert len(specs) == 6
    assert [s.axes["seed"] for s in specs] == [1, 1, 1, 2, 2, 2]  # first path outermost
    assert specs[4].step("place_neurons").density_per_mm3 == 2e4
    nested = next(sweep(BASE, {"acquisition.optics.na": [0.3]}))
    assert nested.acquisition.optics.na == 0.3
    assert BASE.acquisition.optics.na == 0.45  # the base is never modified
    assert list(sweep(BASE, {}))[0].axes == {}


def test_swept_spec_cache_key_ignores_axes():
    swept = next(sweep(BASE, {"seed": [7]}))
    plain = BASE.model_copy(update={"seed": 7})
    assert swept.cache_key() == plain.cache_key()
    assert "axes" not in swept.model_dump_json()


def test_sweep_errors():
    with pytest.raises(ValueError, match="unknown field"):
        list(sweep(BASE, {"acquisition.optics.numerical_aperture": [0.3]}))
    with pytest.raises(ValueError, match="no step of kind"):
        list(sweep(BASE, {"steps.sensor.photons_per_unit": [1.0]}))
    with pytest.raises(ValueError, match="non-model field"):
        list(sweep(BASE, {"seed.value": [1]}))
    with pytest.raises(ValueError, match="steps.<kind>.<field>"):
        list(sweep(BASE, {"steps": [[]]}))
    with pytest.raises(ValidationError):  # every combination is re-validated
        list(sweep(BASE, {"acquisition.fps": [-1.0]}))


def test_generate_writes_stores_and_manifest_and_skips_done(tmp_path):
    specs = list(sweep(BASE, {"seed": [0, 1, 2]}))
    manifest = generate(specs, tmp_path / "archive")
    entries = json.loads(manifest.read_text())["recordings"]
    assert [e["axes"]["seed"] for e in entries] == [0, 1, 2]
    for spec, entry in zip(specs, entries, strict=True):
        store = tmp_path / "archive" / entry["store"]
        assert entry["store"] == f"{spec.cache_key()}.zarr" and is_complete(store)
        assert open_recording(store).spec.seed == spec.axes["seed"]
    stamp = (tmp_path / "archive" / entries[0]["store"] / "zarr.json").stat().st_mtime_ns
    generate(specs, tmp_path / "archive")  # already complete: nothing rewritten
    assert (tmp_path / "archive" / entries[0]["store"] / "zarr.json").stat().st_mtime_ns == stamp


def test_simulate_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("MINISIM_CACHE", str(tmp_path / "cache"))
    first = simulate_cached(BASE)
    path = cache_path(BASE)
    assert path.parent == tmp_path / "cache" and is_complete(path)
    stamp = (path / "zarr.json").stat().st_mtime_ns
    again = simulate_cached(BASE)
    assert (path / "zarr.json").stat().st_mtime_ns == stamp  # a hit simulates nothing
    assert (again.observed.values == first.observed.values).all()
    other = BASE.model_copy(update={"seed": 2})
    assert cache_path(other) != path
