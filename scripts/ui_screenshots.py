"""docs/images/ui-*.jpg: the page of ``gantool serve`` for each kind of task, as the browser test sees it.

Runs ``tests/test_ui_browser.py::test_every_kind_of_task_runs_from_the_page`` (headless Chromium, a viewport
of 1100 x 800) with ``GANTOOL_UI_SCREENSHOTS`` set, then writes each PNG it saved as a JPEG under the size
limit (screenshots hold photos: a PNG of one is 250-450 KB). Needs what the test needs (selenium, chromium,
chromium-driver; see docs/ui.md).

    .venv/bin/python scripts/ui_screenshots.py [--horse horse2zebra/testA/n02381460_1000.jpg] [--out docs/images]

``--horse``: the photo the translation (horse -> zebra) runs on; without it, examples/coffee.png.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from gantool.image.io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]
TEST = "tests/test_ui_browser.py::test_every_kind_of_task_runs_from_the_page"
LIMIT = 200_000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--horse", type=Path, help="a horse photo for the translation screenshot")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gantool-shots-") as folder:
        env = {**os.environ, "GANTOOL_UI_SCREENSHOTS": folder, "GANTOOL_BROWSER_TEST": "1"}
        if args.horse:
            env["GANTOOL_UI_TRANSLATE_PHOTO"] = str(args.horse.resolve())
        run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", TEST], cwd=ROOT,
                             env=env, check=False)
        if run.returncode:
            return run.returncode
        for shot in sorted(Path(folder).glob("ui-*.png")):
            target = args.out / f"{shot.stem}.jpg"
            image = read_image(shot)
            for quality in (88, 82, 76, 70):
                write_image(target, image, quality=quality)
                if target.stat().st_size <= LIMIT:
                    break
            print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}: "
                  f"{image.color.shape[1]} x {image.color.shape[0]}, {target.stat().st_size // 1000} KB, "
                  f"quality {quality}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
