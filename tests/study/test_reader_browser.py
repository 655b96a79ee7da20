"""The reader study end to end: a reader answers 20 images by clicking in Chromium."""

import json
import re
import subprocess

import numpy as np
import pytest

from tests.helpers.browser import chromium_path
from tests.helpers.processes import BIN, Processes, free_port, wait_for_port
from tests.helpers.run_folders import write_labelled_run


@pytest.mark.timeout(300)
def test_a_reader_answers_twenty_images_in_chromium_then_scores(tmp_path):
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    write_labelled_run(tmp_path / "run", np.eye(4, dtype=np.uint8)[np.arange(40) % 4])
    port = free_port()
    processes = Processes()
    server = processes.start(
        [str(BIN / "privsynth"), "reader-study", str(tmp_path / "run")]
        + ["--images", "20", "--port", str(port)],
        tmp_path / "server.log",
    )
    try:
        wait_for_port(server, port)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
            page = browser.new_page()
            page.goto(f"http://127.0.0.1:{port}/")
            page.fill("#reader", "dr-test")
            page.click("#start")
            for number in range(1, 21):
                assert f"Image {number} of 20" in page.inner_text("#progress")
                assert page.evaluate("document.getElementById('image').naturalWidth") == 320
                page.click("#real" if number % 2 else "#synthetic")
                page.wait_for_load_state()
            done = page.inner_text("#done")
            browser.close()
    finally:
        processes.stop_all()

    scored = subprocess.run(
        [str(BIN / "privsynth"), "reader-study", str(tmp_path / "run"), "--score"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    answers = (tmp_path / "run" / "reader-study" / "answers.jsonl").read_text().splitlines()
    scores = json.loads((tmp_path / "run" / "reader-study" / "scores.json").read_text())
    assert done == "All 20 images answered"
    assert len(answers) == 20
    assert scores["readers"]["dr-test"]["answered"] == 20
    assert re.search(r"dr-test\s+20\s+\d+\s+0\.\d{3}\s+", scored)
