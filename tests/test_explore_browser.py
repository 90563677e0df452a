"""`minisim explore` in a real browser: the served page loads, its sliders respond to the
keyboard, and the picture changes — for a frame change and for a physics change.

Runs the command as a subprocess on a free localhost port and drives Debian's headless
chromium through chromedriver (selenium). Skipped, with the reason, when either is absent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

pytest.importorskip("panel")
webdriver = pytest.importorskip("selenium.webdriver")

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs chromium and chromedriver (apt-get install chromium chromium-driver)",
)

CHROME_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=1400,1100",
]  # fmt: skip

# Panel renders into shadow roots: search them all (test-side only; the app has no JS).
FIND_ALL = """
function walk(root, selector, found) {
  root.querySelectorAll(selector).forEach(e => found.push(e));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot, selector, found); });
  return found;
}
return walk(document, arguments[0], []);
"""
SLIDER_HANDLE = """
const name = arguments[0];
function walk(root, found) {
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) {
    const title = e.shadowRoot.querySelector('.bk-slider-title');
    const handle = e.shadowRoot.querySelector('.noUi-handle');
    if (title && handle && title.textContent.startsWith(name + ':')) found.push([handle, title]);
    walk(e.shadowRoot, found);
  }});
  return found;
}
return walk(document, []);
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from minisim import CellActivity, CellOptics, Composite, PlaceNeurons, Sensor, Spec
    from minisim.explore.studio import default_spec

    spec = default_spec()
    small = spec.acquisition.image_sensor.model_copy(update={"n_px_height": 96, "n_px_width": 96})
    spec = Spec(
        acquisition=spec.acquisition.model_copy(update={"image_sensor": small, "duration_s": 10.0}),
        seed=1,
        steps=[PlaceNeurons(), CellActivity(), CellOptics(), Composite(), Sensor()],
    )
    folder = tmp_path_factory.mktemp("explore")
    (folder / "spec.json").write_text(spec.model_dump_json())
    port = free_port()
    log = open(folder / "server.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "minisim.cli", "explore", str(folder / "spec.json"),
         "--no-browser", "--port", str(port)],
        cwd=folder, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy(),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"

    def up():
        if proc.poll() is not None:
            raise AssertionError(f"minisim explore exited: {(folder / 'server.log').read_text()}")
        try:  # the port is open (an HTTP request would start a whole studio session)
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    try:
        wait_until(up, 60, "the studio to serve")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


IMAGE_SOURCES = FIND_ALL.replace(
    "return walk(document, arguments[0], []);",
    "return walk(document, 'img', []).map(img => img.src);",
)


def images(driver) -> list[str]:
    """The src of every picture, read in one script (the page replaces them as it redraws)."""
    return driver.execute_script(IMAGE_SOURCES)


def press_right(driver, slider: str, times: int) -> str:
    """Focus a slider's handle and press → ``times`` times; returns the slider's new title.

    On a loaded machine a press can land while the page is busy redrawing and be lost, so
    the keys are sent again (at most three rounds) until the title shows a new value.
    """
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    found = wait_until(lambda: driver.execute_script(SLIDER_HANDLE, slider), 30,
                       f"the {slider!r} slider")  # fmt: skip
    handle, title = found[0]
    start = title.text
    for _ in range(3):
        driver.execute_script("arguments[0].focus()", handle)
        keys = ActionChains(driver)
        for _ in range(times):
            keys.send_keys(Keys.ARROW_RIGHT)
        keys.perform()
        try:
            wait_until(lambda: title.text != start, 20, f"the {slider!r} slider to move")
            return title.text
        except AssertionError:
            continue
    raise AssertionError(f"the {slider!r} slider did not move with the keyboard")


def test_sliders_move_with_the_keyboard_and_the_picture_follows(server, browser, tmp_path):
    browser.get(server)
    wait_until(lambda: len([s for s in images(browser) if s]) >= 3, 120, "the preview images")
    titles = [t.text for t in browser.execute_script(FIND_ALL, ".bk-slider-title")]
    assert any(t.startswith("frame:") for t in titles) and any(t.startswith("NA:") for t in titles)
    browser.save_screenshot(str(tmp_path / "studio.png"))

    # A frame change: one frame computed, the frame picture replaced.
    before = images(browser)
    title = press_right(browser, "frame", 3)
    wait_until(lambda: images(browser)[0] != before[0], 120, "the frame picture to change")
    assert 1 <= int(title.split(":")[1]) <= 9  # one frame per press

    # A physics change (NA): the preview is rebuilt and redrawn.
    before = images(browser)
    title = press_right(browser, "NA", 5)
    wait_until(lambda: images(browser)[0] != before[0], 120, "the preview to follow NA")
    assert 0.45 < float(title.split(":")[1]) <= 0.60  # 0.01 per press
