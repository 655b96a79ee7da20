"""Open a sweep's report.html in headless Chromium, check that every figure decoded and save a
full-page screenshot next to it (report.png).

usage: python benchmarks/render_report.py STUDY_DIR
"""

import shutil
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common.run_folder import StudyFolder  # noqa: E402


def main(study_dir: Path) -> None:
    study = StudyFolder(study_dir)
    report = study.report.resolve()
    executable = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)
    if executable is None:
        sys.exit("Chromium is not installed: apt-get install chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(report.as_uri())
        widths = page.eval_on_selector_all("img", "imgs => imgs.map(i => i.naturalWidth)")
        rows = page.eval_on_selector_all("#results tr", "rows => rows.length")
        page.screenshot(path=str(study.report_screenshot), full_page=True)
        browser.close()
    broken = sum(1 for width in widths if width == 0)
    print(f"{report}: {len(widths)} figures, {broken} broken, {rows - 1} table rows")
    sys.exit(1 if broken or not widths else 0)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
