"""Stores minisim can be trusted with: it never touches what is not its own, overwrites
atomically, resumes only the same spec, and detects every kind of damage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import zarr

import minisim.steps.composite as composite_module
from minisim import (
    CellActivity,
    CellOptics,
    Composite,
    DamagedStoreError,
    IncompleteStoreError,
    OutputPathError,
    PlaceNeurons,
    Sensor,
    Spec,
    generate,
    open_recording,
    simulate,
    simulate_cached,
    sweep,
    verify,
)
from minisim.cli import main

from .conftest import small_acquisition
from .test_zarr import assert_same_dataset, store_bytes

SPEC = Spec(
    acquisition=small_acquisition(px=32, duration_s=2.0),
    seed=3,
    steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Sensor()],
)
OTHER = SPEC.model_copy(update={"seed": 4})


def user_folder(root: Path) -> dict[Path, bytes]:
    """A folder of someone's files; returns what it holds so the test can compare."""
    (root / "sub").mkdir(parents=True)
    files = {root / "notes.txt": b"my thesis", root / "sub" / "data.bin": os.urandom(64)}
    for path, content in files.items():
        path.write_bytes(content)
    return files


def assert_untouched(files: dict[Path, bytes]) -> None:
    for path, content in files.items():
        assert path.read_bytes() == content, path
    root = next(iter(files)).parent
    assert sorted(p.name for p in root.iterdir()) == ["notes.txt", "sub"]


# -- 1. never destroy what is not ours ---------------------------------------------------------


def test_a_folder_of_user_files_is_refused_untouched(tmp_path):
    files = user_folder(tmp_path / "mydata")
    with pytest.raises(OutputPathError, match="non-empty folder that is not a minisim store"):
        simulate(SPEC).to_zarr(tmp_path / "mydata")
    assert_untouched(files)


@pytest.mark.parametrize("resume", [False, True])
def test_cli_run_into_a_user_folder_or_dot_exits_nonzero_untouched(tmp_path, capsys, resume,
                                                                   monkeypatch):  # fmt: skip
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(SPEC.model_dump_json())
    files = user_folder(tmp_path / "mydata")
    extra = ["--resume"] if resume else []
    assert main(["run", str(spec_file), "-o", str(tmp_path / "mydata"), *extra]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "refusing to write" in err and "mydata" in err
    assert_untouched(files)
    monkeypatch.chdir(tmp_path / "mydata")  # `-o .` from inside the folder
    assert main(["run", str(spec_file), "-o", ".", *extra]) == 1
    assert_untouched(files)


def test_a_file_and_a_foreign_zarr_store_are_refused(tmp_path):
    target = tmp_path / "movie.zarr"
    target.write_bytes(b"not a store")
    with pytest.raises(OutputPathError, match="is a file"):
        simulate(SPEC).to_zarr(target)
    assert target.read_bytes() == b"not a store"
    foreign = tmp_path / "foreign.zarr"
    zarr.open_group(str(foreign), mode="w").create_array("x", shape=(3,), dtype="i4")[:] = 7
    before = store_bytes(foreign)
    for mode in ("w", "resume"):
        with pytest.raises(OutputPathError, match="Zarr store that minisim did not write"):
            simulate(SPEC).to_zarr(foreign, mode=mode)
    assert store_bytes(foreign) == before


def test_an_empty_folder_is_free_to_use(tmp_path):
    (tmp_path / "empty").mkdir()
    simulate(SPEC).to_zarr(tmp_path / "empty")
    assert open_recording(tmp_path / "empty").ground_truth.n_units > 0


def test_archives_and_caches_refuse_foreign_paths(tmp_path):
    root = tmp_path / "archive"
    root.mkdir()
    (root / "manifest.json").write_text('{"mine": true}')
    with pytest.raises(OutputPathError, match="manifest"):
        generate([SPEC], root)
    assert (root / "manifest.json").read_text() == '{"mine": true}'
    assert [p.name for p in root.iterdir()] == ["manifest.json"]  # refused before any work
    (root / "manifest.json").unlink()
    squatter = root / f"{OTHER.cache_key()}.zarr"
    files = user_folder(squatter)
    with pytest.raises(OutputPathError, match="non-empty folder"):
        generate([SPEC, OTHER], root)
    assert_untouched(files)
    assert [p.name for p in root.iterdir()] == [squatter.name]  # nothing else was written
    cache = tmp_path / "cache"
    squatter = cache / f"{SPEC.cache_key()}.zarr"
    files = user_folder(squatter)
    with pytest.raises(OutputPathError):
        simulate_cached(SPEC, root=cache)
    assert_untouched(files)


# -- atomic overwrite, resume ------------------------------------------------------------------


def test_a_failed_overwrite_leaves_the_old_store_as_it_was(tmp_path, monkeypatch):
    path = tmp_path / "rec.zarr"
    simulate(SPEC, chunks=10).to_zarr(path)
    before = store_bytes(path)
    original = composite_module.composite_frames

    def failing(start, stop, *args):
        if start >= 20:
            raise OSError("disk full (simulated)")
        return original(start, stop, *args)

    monkeypatch.setattr(composite_module, "composite_frames", failing)
    with pytest.raises(OSError, match="simulated"):
        simulate(OTHER, chunks=10).to_zarr(path)
    monkeypatch.setattr(composite_module, "composite_frames", original)
    assert store_bytes(path) == before
    assert open_recording(path).spec == SPEC
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "rec.zarr"]
    assert leftovers and all(".minisim-partial-" in n for n in leftovers)
    simulate(OTHER, chunks=10).to_zarr(path)  # the next write cleans up, then replaces
    assert [p.name for p in tmp_path.iterdir()] == ["rec.zarr"]
    assert open_recording(path).spec == OTHER


SLOW_WRITER = """
import sys, minisim
spec = minisim.Spec.model_validate_json(open(sys.argv[1]).read())
minisim.simulate(spec, chunks=2).to_zarr(sys.argv[2], mode=sys.argv[3])
"""


def _kill_when_chunks_appear(args, chunk_dir_glob: str, root: Path, at_least: int = 3) -> None:
    """Run a writer in a subprocess and SIGKILL it once some chunks are on disk."""
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, *map(str, args)])
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            written = [p for d in root.glob(chunk_dir_glob) for p in d.iterdir()]
            if len(written) >= at_least:
                break
            time.sleep(0.005)
        assert proc.poll() is None, "the writer finished before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


LONG = SPEC.model_copy(update={"acquisition": small_acquisition(px=48, duration_s=30.0)})
LONG_OTHER = LONG.model_copy(update={"seed": 11})


def test_killed_mid_overwrite_the_old_store_survives_byte_for_byte(tmp_path):
    path = tmp_path / "rec.zarr"
    simulate(LONG_OTHER, chunks=50).to_zarr(path)
    before = store_bytes(path)
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(LONG.model_dump_json())
    _kill_when_chunks_appear([spec_file, path, "w"], ".rec.zarr.minisim-partial-*/observed/c",
                             tmp_path)  # fmt: skip
    assert store_bytes(path) == before
    assert open_recording(path).spec == LONG_OTHER
    simulate(LONG, chunks=50).to_zarr(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rec.zarr", "spec.json"]


def test_killed_mid_write_refuses_to_open_then_resumes_with_any_chunks(tmp_path):
    path = tmp_path / "rec.zarr"
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(LONG.model_dump_json())
    _kill_when_chunks_appear([spec_file, path, "w"], "rec.zarr/observed/c", tmp_path)
    with pytest.raises(IncompleteStoreError, match="resume"):
        open_recording(path)
    plain = xr.open_zarr(path, consolidated=False)  # what a user without minisim sees
    assert plain.attrs["minisim_complete"] is False
    assert "INCOMPLETE" in plain.attrs["minisim_unfinished"]
    simulate(LONG, chunks=7).to_zarr(path, mode="resume")  # other chunks: re-cut to the store's
    reference = tmp_path / "reference.zarr"
    simulate(LONG, chunks=2).to_zarr(reference)
    assert store_bytes(path) == store_bytes(reference)
    assert "minisim_unfinished" not in xr.open_zarr(path).attrs


def test_resume_of_a_complete_store_of_another_spec_names_the_fields(tmp_path, capsys):
    path = tmp_path / "rec.zarr"
    simulate(SPEC).to_zarr(path)
    before = store_bytes(path)
    changed = SPEC.model_copy(
        update={"seed": 8, "acquisition": small_acquisition(px=32, duration_s=2.0, fps=10.0)}
    )
    with pytest.raises(ValueError, match=r"different spec.*acquisition\.fps.*seed.*untouched"):
        simulate(changed).to_zarr(path, mode="resume")
    assert store_bytes(path) == before
    spec_file = tmp_path / "changed.json"
    spec_file.write_text(changed.model_dump_json())
    assert main(["run", str(spec_file), "-o", str(path), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "seed" in err and err.strip().count("\n") == 0
    simulate(SPEC).to_zarr(path, mode="resume")  # same spec, complete: nothing to do
    assert store_bytes(path) == before


# -- 2. damage is detected ---------------------------------------------------------------------


@pytest.fixture
def stored(tmp_path):
    path = tmp_path / "rec.zarr"
    simulate(SPEC, chunks=10).to_zarr(path)
    return path


def _chunk(path: Path, name: str, index: str) -> Path:
    return path / name / "c" / Path(*index.split("/"))


@pytest.mark.parametrize(
    ("name", "index"), [("observed", "1/0/0"), ("C", "0/2"), ("A_planted", "0/0/0")]
)
def test_a_missing_chunk_fails_to_open_naming_it(stored, name, index, capsys):
    _chunk(stored, name, index).unlink()
    with pytest.raises(
        DamagedStoreError, match=rf"missing {name} \(chunk \({index.replace('/', ', ')}\)\)"
    ):
        open_recording(stored)
    report = verify(stored, progress=False)
    assert not report.ok and name in report.damaged
    assert main(["verify", str(stored), "--quiet"]) == 1
    assert name in capsys.readouterr().err
    assert main(["info", str(stored)]) == 1
    assert "DAMAGED" in capsys.readouterr().out


def test_a_deleted_variable_folder_fails_to_open(stored):
    import shutil

    shutil.rmtree(stored / "observed")
    with pytest.raises(DamagedStoreError, match=r"missing observed \(its metadata"):
        open_recording(stored)


def test_a_chunk_deleted_after_opening_raises_instead_of_reading_fill_values(stored):
    rec = open_recording(stored)
    _chunk(stored, "observed", "2/0/0").unlink()
    assert rec.observed[:10].values.any()  # intact chunks still read
    with pytest.raises(DamagedStoreError, match=r"'observed', chunk \(2, 0, 0\).*missing"):
        rec.observed[20:30].load()


@pytest.mark.parametrize("damage", ["flip", "truncate"])
@pytest.mark.parametrize(("name", "index"), [("observed", "1/0/0"), ("C", "0/1"), ("S", "0/0")])
def test_corrupt_bytes_are_caught_on_read_and_by_verify(stored, damage, name, index, capsys):
    chunk = _chunk(stored, name, index)
    data = bytearray(chunk.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0x10
    else:
        data = data[: len(data) // 2]
    chunk.write_bytes(bytes(data))
    rec = open_recording(stored)  # the listing is whole
    position = tuple(int(i) for i in index.split("/"))
    with pytest.raises(DamagedStoreError, match=rf"{name}', chunk \({position[0]}, "):
        rec.dataset[name].load()
    report = verify(stored, progress=False)
    assert list(report.damaged) == [name] and len(report.damaged[name]) == 1
    if damage == "flip":
        assert "checksum" in report.damaged[name][0]
    assert main(["verify", str(stored), "--quiet"]) == 1
    assert name in capsys.readouterr().err
    assert main(["info", str(stored), "--verify"]) == 1


def test_an_intact_store_verifies(stored, capsys):
    report = verify(stored, progress=False)
    group = zarr.open_group(str(stored), mode="r")
    expected = sum(int(np.prod([-(-s // c) for s, c in zip(a.shape, a.chunks, strict=True)]))
                   for _, a in group.arrays())  # fmt: skip
    assert report.ok and report.chunks_checked == expected
    assert main(["verify", str(stored), "--quiet"]) == 0
    assert "OK" in capsys.readouterr().out
    codecs = [
        c["name"] for c in json.loads((stored / "observed" / "zarr.json").read_text())["codecs"]
    ]
    assert codecs[-1] == "crc32c"


# -- URLs ----------------------------------------------------------------------------------------


def test_file_urls_and_memory_urls_work_where_paths_do(tmp_path):
    url = f"file://{tmp_path}/rec.zarr"
    simulate(SPEC).to_zarr(url)
    assert verify(url, progress=False).ok
    reference = simulate(SPEC).compute().dataset
    assert_same_dataset(open_recording(url).dataset, reference)
    manifest = generate(list(sweep(SPEC, {"seed": [3, 5]})), "memory://archive")
    assert manifest == "memory://archive/manifest.json"
    back = open_recording(f"memory://archive/{SPEC.cache_key()}.zarr")
    assert_same_dataset(back.dataset, reference)
    cached = simulate_cached(SPEC, root="memory://cache")
    assert_same_dataset(cached.dataset, reference)


def test_a_computed_recording_writes_the_same_store(tmp_path):
    simulate(SPEC).to_zarr(tmp_path / "lazy.zarr")
    simulate(SPEC).compute().to_zarr(tmp_path / "computed.zarr")
    assert store_bytes(tmp_path / "computed.zarr") == store_bytes(tmp_path / "lazy.zarr")


def test_writes_show_progress_when_asked(tmp_path, capsys):
    simulate(SPEC).to_zarr(tmp_path / "quiet.zarr")
    assert "Completed" not in capsys.readouterr().err
    simulate(SPEC).to_zarr(tmp_path / "loud.zarr", progress=True)
    assert "100% Completed" in capsys.readouterr().err
    generate([SPEC, OTHER], tmp_path / "archive", progress=True)
    assert "100% Completed" in capsys.readouterr().err
