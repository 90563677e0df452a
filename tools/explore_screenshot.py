"""Screenshot of the studio for the docs: ``python tools/explore_screenshot.py [OUT.png]``.

Starts ``minisim explore --no-browser`` on a free port, opens it in headless chromium
(Debian's ``chromium`` + ``chromium-driver``, driven by selenium), waits for the preview,
moves the frame slider a few steps with the keyboard and saves the page
(default ``graphs/explore_studio.png``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.keys import Keys

ROOT = Path(__file__).resolve().parents[1]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--window-size=1400,1000", "--hide-scrollbars"]  # fmt: skip
FIND = """
const name = arguments[0];
function walk(root, found) {
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) {
    const title = e.shadowRoot.querySelector('.bk-slider-title');
    const handle = e.shadowRoot.querySelector('.noUi-handle');
    if (title && handle && title.textContent.startsWith(name + ':')) found.push(handle);
    walk(e.shadowRoot, found);
  }});
  return found;
}
return walk(document, []);
"""
IMAGES = """
function walk(root, found) {
  root.querySelectorAll('img').forEach(e => found.push(e.src));
  root.querySelectorAll('*').forEach(e => { if (e.shadowRoot) walk(e.shadowRoot, found); });
  return found;
}
return walk(document, []);
"""


def main(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "minisim.cli", "explore", "--no-browser", "--port", str(port)]
    )
    url = f"http://127.0.0.1:{port}/"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tempfile.mkdtemp()}")
    driver = None
    try:
        for _ in range(120):
            try:  # the port is open (an HTTP request would start a whole session)
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        driver = webdriver.Chrome(options=options, service=Service(shutil.which("chromedriver")))
        driver.get(url)
        for _ in range(120):
            if len([s for s in driver.execute_script(IMAGES) if s]) >= 3:
                break
            time.sleep(0.5)
        before = driver.execute_script(IMAGES)[0]
        handle = driver.execute_script(FIND, "frame")[0]
        driver.execute_script("arguments[0].focus()", handle)
        ActionChains(driver).send_keys(*[Keys.ARROW_RIGHT] * 40).perform()
        for _ in range(120):
            if driver.execute_script(IMAGES)[0] != before:
                break
            time.sleep(0.5)
        time.sleep(2)
        driver.save_screenshot(str(out))
        print(f"wrote {out}")
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "graphs" / "explore_studio.png")
