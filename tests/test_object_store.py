"""Archives on object storage: a real S3-compatible server (moto's server mode) on localhost."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

s3fs = pytest.importorskip("s3fs", reason="object-store tests need s3fs (test extra)")
pytest.importorskip("moto.server", reason="object-store tests need moto[server] (test extra)")

from minisim import (  # noqa: E402
    CellActivity,
    CellOptics,
    Composite,
    PlaceNeurons,
    Sensor,
    Spec,
    generate,
    open_recording,
    simulate,
    simulate_cached,
    sweep,
    verify,
)  # fmt: skip

from .conftest import small_acquisition  # noqa: E402
from .test_zarr import assert_same_dataset  # noqa: E402

SPEC = Spec(acquisition=small_acquisition(px=32, duration_s=1.0), seed=6,
            steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Sensor()])  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server in its own process, a bucket, and the storage options to reach it."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{port}"
    options = {"key": "testing", "secret": "testing",
               "client_kwargs": {"endpoint_url": endpoint, "region_name": "us-east-1"}}  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("the moto server did not start")
                time.sleep(0.1)
        import boto3

        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                     aws_access_key_id="testing", aws_secret_access_key="testing",
                     ).create_bucket(Bucket="archive-bucket")  # fmt: skip
        yield options
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_an_archive_of_two_recordings_on_s3_equals_local_runs(s3, tmp_path):
    specs = list(sweep(SPEC, {"seed": [6, 7]}))
    manifest = generate(specs, "s3://archive-bucket/sweep", storage_options=s3)
    assert manifest == "s3://archive-bucket/sweep/manifest.json"
    fs = s3fs.S3FileSystem(**s3)
    assert fs.exists("archive-bucket/sweep/manifest.json")
    for spec in specs:
        url = f"s3://archive-bucket/sweep/{spec.cache_key()}.zarr"
        back = open_recording(url, storage_options=s3)
        assert verify(url, storage_options=s3, progress=False).ok
        local = tmp_path / f"{spec.seed}.zarr"
        simulate(spec).to_zarr(local)
        assert_same_dataset(back.dataset, open_recording(local).dataset)
    again = generate(specs, "s3://archive-bucket/sweep", storage_options=s3)  # all complete
    assert again == manifest


def test_a_cache_on_s3_and_damage_there_is_detected(s3):
    rec = simulate_cached(SPEC, root="s3://archive-bucket/cache", storage_options=s3)
    assert_same_dataset(rec.dataset, simulate(SPEC).compute().dataset)
    fs = s3fs.S3FileSystem(**s3)
    chunk = f"archive-bucket/cache/{SPEC.cache_key()}.zarr/observed/c/0/0/0"
    fs.rm(chunk)
    report = verify(f"s3://archive-bucket/cache/{SPEC.cache_key()}.zarr", storage_options=s3,
                    progress=False)  # fmt: skip
    assert not report.ok and "observed" in report.damaged


def test_a_foreign_object_prefix_is_refused_untouched(s3):
    fs = s3fs.S3FileSystem(**s3)
    fs.pipe("archive-bucket/theirs/notes.txt", b"keep me")
    from minisim import OutputPathError

    with pytest.raises(OutputPathError, match="not a minisim store"):
        simulate(SPEC).to_zarr("s3://archive-bucket/theirs", storage_options=s3)
    assert fs.cat("archive-bucket/theirs/notes.txt") == b"keep me"
