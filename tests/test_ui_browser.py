"""``gantool serve`` driven in a real headless browser: the page's form, brush and download links.

A ``gantool serve`` process on a free port, Chromium through selenium: upscale an image picked in the
form, inpaint with a mask painted by mouse drags on the canvas, generate a grid with a seed, download each
result through its link, and check the files equal the CLI's for the same inputs; a corrupt upload shows
its message on the page. The last test runs every kind of task once more on a photo and saves the page
as it looks (``scripts/ui_screenshots.sh`` keeps those as the screenshots of docs/ui.md).

Needs selenium (``pip install selenium``) and Chromium with its driver (Debian: ``apt-get install chromium
chromium-driver``; ``GANTOOL_CHROMIUM`` / ``GANTOOL_CHROMEDRIVER`` name other binaries). Without them the
tests skip, saying which is missing; ``GANTOOL_BROWSER_TEST=1`` (``make test-browser``) makes that a failure.
No browser or driver is ever downloaded (selenium's own manager is bypassed).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

import gantool_inpaint
import gantool_lapgan
import gantool_superres
from gantool.cli.app import build_app
from gantool.image.io import Image, read_image, write_image
from gantool.plugin.manager import build_plugin_system
from gantool.testing import smooth_photo

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.browser, pytest.mark.slow]
REQUIRED = os.environ.get("GANTOOL_BROWSER_TEST", "") == "1"
#: The window the screenshots are taken in (docs/ui.md).
WINDOW = (1100, 800)
WAIT = 180.0


def _tools() -> tuple[str, str]:
    """(chromium, chromedriver) paths, or skip (fail under GANTOOL_BROWSER_TEST=1) naming what is missing."""
    missing = []
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip install selenium)")
    chromium = os.environ.get("GANTOOL_CHROMIUM") or next(
        (found for name in ("chromium", "chromium-browser", "google-chrome") if (found := shutil.which(name))), None)
    driver = os.environ.get("GANTOOL_CHROMEDRIVER") or shutil.which("chromedriver")
    if not chromium:
        missing.append("a chromium binary (apt-get install chromium, or set GANTOOL_CHROMIUM)")
    if not driver:
        missing.append("chromedriver (apt-get install chromium-driver, or set GANTOOL_CHROMEDRIVER)")
    pytest.importorskip("fastapi", reason='the ui extra is not installed (pip install "gantool[ui]")')
    if missing:
        reason = "browser test needs " + "; ".join(missing)
        if REQUIRED:
            pytest.fail(reason + " (GANTOOL_BROWSER_TEST=1)")
        pytest.skip(reason)
    assert chromium is not None and driver is not None
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, stop_server) -> Iterator[dict[str, Any]]:
    """A ``gantool serve`` process; its temporary folder (TMPDIR) is known, so a test can read what was sent."""
    _tools()
    port, temp = _free_port(), tmp_path_factory.mktemp("server-tmp")
    env = {**os.environ, "TMPDIR": str(temp), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), str(ROOT / "plugins"), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen([sys.executable, "-m", "gantool", "serve", "--port", str(port)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://localhost:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "api/tasks", timeout=2):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"gantool serve did not answer: {process.stderr.read() if process.stderr else ''}")
                time.sleep(0.2)
        yield {"url": url, "temp": temp}
    finally:
        stop_server(process)


class Page:
    """The page in one headless Chromium; downloads land in ``downloads``."""

    def __init__(self, url: str, downloads: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, driver = _tools()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                         "--hide-scrollbars", "--force-device-scale-factor=1", "--window-size={},{}".format(*WINDOW)):
            options.add_argument(argument)
        options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                                  "download.prompt_for_download": False})
        self.driver = webdriver.Chrome(options=options, service=Service(executable_path=driver))
        self.driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        self.downloads, self.url = downloads, url
        inner = self.driver.execute_script("return [window.innerWidth, window.innerHeight]")
        outer = self.driver.get_window_size()  # the viewport, not the window, is WINDOW (the screenshots' size)
        self.driver.set_window_size(outer["width"] + WINDOW[0] - inner[0], outer["height"] + WINDOW[1] - inner[1])
        self.open()

    def open(self) -> None:
        self.driver.get(self.url)
        self.until(lambda: self.by_id("task-select").find_elements("tag name", "option"), "the task list")

    def close(self) -> None:
        self.driver.quit()

    def by_id(self, name: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.ID, name)

    def until(self, condition: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
        """Poll ``condition``; an element the page re-rendered while it was read counts as "not yet"."""
        from selenium.common.exceptions import StaleElementReferenceException

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = condition()
            except StaleElementReferenceException:
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"waited {timeout:.0f} s for {what}; status {self.by_id('status').text!r}, "
                             f"error {self.by_id('error').text!r}")

    def choose(self, select_id: str, value: str) -> None:
        from selenium.webdriver.support.select import Select

        Select(self.by_id(select_id)).select_by_value(value)

    def set_value(self, element_id: str, value: Any) -> None:
        """Set an input as a user does: unfold its group, tick, choose or type (a range slider is set)."""
        element = self.by_id(element_id)
        if not element.is_displayed():  # in a folded group ("Run settings"): unfold it
            self.driver.execute_script("arguments[0].closest('details').querySelector('summary').click()", element)
        kind = element.get_attribute("type")
        if kind == "checkbox":
            if element.is_selected() != bool(value):
                element.click()
        elif element.tag_name == "select":
            self.choose(element_id, str(value))
        elif kind in ("text", "number"):
            element.clear()
            element.send_keys(str(value))
        else:  # a range: no keys type a value into it
            self.driver.execute_script("arguments[0].value = arguments[1];"
                                       "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));",
                                       element, str(value))

    def painted(self) -> int:
        """How many pixels of the mask canvas are painted (the brush's alpha over half)."""
        return int(self.driver.execute_script(
            "const c = document.getElementById('mask-canvas');"
            "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 127) n++; return n;"))

    def task(self, name: str, model: str = "", **options: Any) -> None:
        self.open()  # a fresh page: no images or masks left from the previous task
        self.choose("task-select", name)
        if model:
            self.choose("model-select", model)
        for option, value in options.items():
            self.set_value(f"opt-{option}", value)

    def pick(self, *paths: Path) -> None:
        self.by_id("image-input").send_keys("\n".join(str(path) for path in paths))
        self.until(lambda: len(self.driver.find_elements("css selector", "#image-list li")) == len(paths),
                   "the picked images in the list")

    def drop(self, path: Path) -> None:
        """Drop a file on the drop zone, as dragged from a file manager (a DataTransfer holding it)."""
        import base64

        count = len(self.driver.find_elements("css selector", "#image-list li"))
        self.driver.execute_script(
            "const [name, data, zone] = arguments;"
            "const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));"
            "const files = new DataTransfer(); files.items.add(new File([bytes], name, {type: 'image/png'}));"
            "zone.dispatchEvent(new DragEvent('drop', {dataTransfer: files, bubbles: true, cancelable: true}));",
            path.name, base64.b64encode(path.read_bytes()).decode(), self.by_id("drop-zone"))
        self.until(lambda: len(self.driver.find_elements("css selector", "#image-list li")) == count + 1,
                   "the dropped image in the list")

    def paint(self, strokes: list[list[tuple[float, float]]], brush: int) -> None:
        """Drag the mouse along each stroke, in one move per point (the page joins them); points are
        fractions (x, y) of the canvas as shown."""
        from selenium.webdriver.common.action_chains import ActionChains

        canvas = self.by_id("mask-canvas")
        self.until(lambda: int(canvas.get_attribute("width") or 0) > 0, "the mask canvas to take the image's size")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", canvas)
        self.set_value("brush-size", brush)
        width, height = canvas.size["width"], canvas.size["height"]
        for stroke in strokes:
            points = [(round((x - 0.5) * width), round((y - 0.5) * height)) for x, y in stroke]
            actions = ActionChains(self.driver, duration=10)
            actions.move_to_element_with_offset(canvas, *points[0]).click_and_hold()
            for x, y in points[1:]:
                actions.move_to_element_with_offset(canvas, x, y)
            actions.release().perform()

    def run(self) -> str:
        """Press Run and wait for the job to finish; its final state."""
        self.by_id("run-button").click()
        self.until(lambda: self.by_id("run-button").get_attribute("disabled") is None
                   or self.by_id("error").is_displayed(), "the job to start", timeout=30)
        state = self.until(lambda: self._finished(), "the job to finish")
        return str(state)

    def _finished(self) -> str | None:
        if self.by_id("error").is_displayed() and self.by_id("run-button").is_enabled():
            return "error"
        if not self.by_id("run-button").is_enabled():
            return None
        text = self.by_id("status").text
        return text.split(":")[0] if text.split(":")[0] in ("done", "failed", "cancelled") else None

    def results(self) -> list[str]:
        return [link.get_attribute("download") for link in
                self.driver.find_elements("css selector", "#results a.download")]

    def download(self, index: int) -> Path:
        """Click ``download-N`` and wait for the file to be complete in ``downloads``."""
        for old in self.downloads.iterdir():
            old.unlink()
        link = self.by_id(f"download-{index}")
        name = link.get_attribute("download")
        self.driver.execute_script("arguments[0].scrollIntoView()", link)
        link.click()
        target = self.downloads / name
        return self.until(lambda: target if target.is_file() and not any(
            path.suffix == ".crdownload" for path in self.downloads.iterdir()) else None, f"the download of {name}",
            timeout=30)

    def screenshot(self, path: Path, top: str = "") -> None:
        """The viewport as a PNG, scrolled to the top of the page or to the element with id ``top``."""
        if top:
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", self.by_id(top))
        else:
            self.driver.execute_script("window.scrollTo(0, 0)")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(path))


@pytest.fixture(scope="module")
def page(server: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    browser = Page(server["url"], tmp_path_factory.mktemp("downloads"))
    try:
        yield browser
    finally:
        browser.close()


@pytest.fixture(scope="module")
def cli() -> Callable[..., None]:
    system = build_plugin_system(entry_points=[], extra_plugins=[
        ("superres", gantool_superres), ("inpaint", gantool_inpaint), ("lapgan", gantool_lapgan)])
    runner = CliRunner()

    def invoke(*args: str) -> None:
        result = runner.invoke(build_app(system), [*args, "--device", "cpu"])
        assert result.exit_code == 0, result.output

    return invoke


def photo(path: Path, size: tuple[int, int] = (48, 64), seed: int = 0) -> Path:
    """A smooth small RGB photo with a little noise (height, width)."""
    write_image(path, Image(smooth_photo(*size, seed=seed)))
    return path


def test_an_upscale_of_a_picked_and_a_dropped_image_downloads_the_clis_bytes(page: Page, cli, tmp_path: Path) -> None:
    first, second = photo(tmp_path / "first.png"), photo(tmp_path / "second.png", (20, 28), seed=3)
    page.task("superres", "superres-x2", device="cpu")
    page.pick(first)
    page.drop(second)
    assert page.run() == "done"
    assert page.results() == ["first.png", "second.png"]
    assert page.by_id("compare").is_displayed()  # the before/after of the first image
    assert not page.by_id("mask-section").is_displayed() and not page.by_id("more-like-this").is_displayed()
    cli("upscale", str(first), str(second), "-o", str(tmp_path / "cli"), "--model", "superres-x2")
    for index, name in enumerate(("first.png", "second.png")):
        assert page.download(index).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_an_inpaint_with_a_painted_mask_downloads_the_clis_bytes(page: Page, server, cli, tmp_path: Path) -> None:
    image = photo(tmp_path / "room.png", (48, 64), seed=1)
    page.task("inpaint", device="cpu", dilate=0)
    page.pick(image)
    # One horizontal stroke across the middle (one fast drag: the page joins its ends), then a second one
    # taken back with undo.
    assert page.by_id("mask-section").is_displayed()
    page.paint([[(0.2, 0.5), (0.8, 0.5)]], brush=40)
    stroke = page.painted()
    page.paint([[(0.5, 0.1), (0.5, 0.3)]], brush=40)
    assert page.painted() > stroke
    page.by_id("undo").click()
    assert page.painted() == stroke
    assert page.run() == "done"
    produced = page.download(0)
    # The mask the page sent (white = hole): the server keeps it in its job folder under our TMPDIR.
    sent = sorted(server["temp"].glob("gantool-ui-*/job-*/in/masks/room_mask.png"))[-1]
    holes = read_image(sent).color[..., 0]
    assert holes.shape == (48, 64) and set(np.unique(holes)) == {0.0, 1.0}
    assert holes[24, 16:48].all(), "the stroke across the middle is a hole"
    assert not holes[:12].any() and not holes[-12:].any(), "above and below the stroke (and the undone one) is kept"
    assert not holes[:, :8].any() and not holes[:, -8:].any(), "left and right of the stroke is kept"
    cli("inpaint", str(image), "--mask", str(sent), "-o", str(tmp_path / "cli"), "--dilate", "0")
    assert produced.read_bytes() == (tmp_path / "cli" / "room.png").read_bytes()
    assert produced.read_bytes() != image.read_bytes()


def test_a_generated_grid_with_a_seed_downloads_the_clis_bytes(page: Page, cli, tmp_path: Path) -> None:
    page.task("lapgan", device="cpu", seed=5, count=10, grid=True)
    assert page.run() == "done"
    names = page.results()
    assert len(names) == 11 and names[-1] == "lapgan-seed5-grid.png"
    cli("generate", "--seed", "5", "-n", "10", "--grid", "-o", str(tmp_path / "cli"))
    for index in (0, 9, 10):
        assert page.download(index).read_bytes() == (tmp_path / "cli" / names[index]).read_bytes(), names[index]
    first = page.download(0).read_bytes()
    page.by_id("more-like-this").click()  # the same seed, twice as many: the first ones come back unchanged
    page.until(lambda: page.by_id("run-button").get_attribute("disabled") is not None
               or len(page.results()) != 11, "more like this to start", timeout=30)
    page.until(lambda: page._finished(), "more like this to finish")
    assert len(page.results()) == 21 and page.by_id("opt-count").get_attribute("value") == "20"
    assert page.download(0).read_bytes() == first


def test_a_corrupt_upload_shows_one_line_on_the_page(page: Page, tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 10)
    page.task("superres", "superres-x2", device="cpu")
    page.pick(broken)
    assert page.run() == "error"
    message = page.by_id("error").text
    assert "broken.png" in message and "\n" not in message and "Traceback" not in message
    assert str(tmp_path) not in message and page.results() == []


def _example(tmp_path: Path, name: str, gray: bool = False, half: int = 2) -> Path:
    """examples/coffee.png at 1/``half`` size (``gray``: its luma only), as a page user would pick it.

    ``GANTOOL_UI_TRANSLATE_PHOTO`` replaces it for the translation (horse -> zebra: a horse photo)."""
    source = ROOT / "examples" / "coffee.png"
    if name == "horse.png" and os.environ.get("GANTOOL_UI_TRANSLATE_PHOTO"):
        source, half = Path(os.environ["GANTOOL_UI_TRANSLATE_PHOTO"]), 1
    pixels = read_image(source).rgb()[::half, ::half]
    if gray:
        pixels = (pixels @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    write_image(tmp_path / name, Image(np.ascontiguousarray(pixels, np.float32)))
    return tmp_path / name


SCREENSHOTS = [  # (file name, task, model, options, image, gray, mask strokes)
    ("ui-upscale.png", "superres", "superres-x2", {}, "coffee.png", False, None),
    ("ui-colorize.png", "colorize", "", {}, "coffee-gray.png", True, None),
    ("ui-inpaint.png", "inpaint", "", {"dilate": 0}, "coffee.png", False,
     [[(0.25, 0.3), (0.45, 0.35), (0.6, 0.3)], [(0.7, 0.6), (0.8, 0.75)]]),
    ("ui-translate.png", "cut", "", {}, "horse.png", False, None),
    ("ui-generate.png", "lapgan", "", {"seed": 7, "count": 16, "grid": True}, None, False, None),
]


@pytest.mark.parametrize(("name", "task", "model", "options", "image", "gray", "strokes"), SCREENSHOTS,
                         ids=[row[1] for row in SCREENSHOTS])
def test_every_kind_of_task_runs_from_the_page(page: Page, tmp_path: Path, name, task, model, options, image,
                                               gray, strokes) -> None:
    """Each task of docs/ui.md on a photo; with GANTOOL_UI_SCREENSHOTS=DIR the page is saved as DIR/NAME."""
    page.task(task, model, **options)  # device auto: the "Run settings" stay folded, as a user sees them
    if image:
        page.pick(_example(tmp_path, image, gray))
    if strokes:
        page.paint(strokes, brush=28)
    assert page.run() == "done"
    assert page.results()
    assert page.by_id("more-like-this").is_displayed() == (task == "lapgan")
    page.until(lambda: page.driver.execute_script(
        "const i = document.getElementById('compare-after'); return !document.getElementById('compare').hidden"
        " && i.complete && i.naturalWidth > 0"), "the result in the before/after view", timeout=30)
    folder = os.environ.get("GANTOOL_UI_SCREENSHOTS")
    page.screenshot(Path(folder) / name if folder else tmp_path / name, top="mask-section" if strokes else "")
