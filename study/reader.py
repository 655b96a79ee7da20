"""The reader study (visual Turing test): can a reader tell real holdout images from synthetic?

State lives in RUN_DIR/reader-study/: `study.json` (the image set and the truth, never sent to
the browser), `images/` (opaque file names), `answers.jsonl` (appended and synced as each
answer is given, so a reader can stop and resume) and `scores.json`.
"""

import hashlib
import json
import math
import os
import random
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from common import atomic
from common.conditions import label_name
from common.errors import UserError
from common.run_data import load_run

STUDY_DIR = "reader-study"
ANSWERS = ("real", "synthetic")
# Shown large enough to read; 28-64 px images are upscaled without smoothing artefacts.
DISPLAY_PX = 320
READER_NAME = re.compile(r"[A-Za-z0-9 _.-]{1,64}")


@dataclass(frozen=True)
class StudyImage:
    id: str
    truth: str
    label: str


@dataclass(frozen=True)
class Study:
    folder: Path
    images: tuple[StudyImage, ...]
    seed: int

    @property
    def answers_path(self) -> Path:
        return self.folder / "answers.jsonl"

    @property
    def scores_path(self) -> Path:
        return self.folder / "scores.json"

    def image_path(self, image_id: str) -> Path:
        return self.folder / "images" / f"{image_id}.png"

    def by_id(self, image_id: str) -> StudyImage | None:
        return next((image for image in self.images if image.id == image_id), None)

    def order(self, reader: str) -> list[StudyImage]:
        """Each reader sees every image once, in an order of their own that survives restarts."""
        key = hashlib.sha256(f"{self.seed}:{reader}".encode()).digest()
        shuffled = list(self.images)
        random.Random(key).shuffle(shuffled)
        return shuffled


def create_study(run_dir: Path, images: int, seed: int) -> Study:
    """A new study of `images` images, half real holdout and half synthetic (the same set
    for every reader); an existing study in the run folder is kept as it is."""
    folder = Path(run_dir) / STUDY_DIR
    if (folder / "study.json").exists():
        return open_study(run_dir)
    if images < 2 or images % 2:
        raise UserError(f"--images must be an even number >= 2, got {images}")
    run = load_run(run_dir)
    rng = np.random.default_rng(seed)
    picked: list[tuple[str, np.ndarray, np.ndarray]] = []
    for truth, source in (("real", run.holdout), ("synthetic", run.synthetic)):
        if len(source) < images // 2:
            raise UserError(
                f"{run_dir} has {len(source)} {truth} images; the study needs {images // 2} "
                f"of each; use a smaller --images"
            )
        for index in rng.choice(len(source), images // 2, replace=False):
            picked.append((truth, source.images[index], source.labels[index]))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    entries = []
    for truth, pixels, label in picked:
        image_id = uuid.UUID(bytes=rng.bytes(16)).hex[:16]
        shown = Image.fromarray(pixels).resize((DISPLAY_PX, DISPLAY_PX), Image.Resampling.BICUBIC)
        shown.save(folder / "images" / f"{image_id}.png")
        entries.append(StudyImage(image_id, truth, label_name(label, run.synthetic.class_names)))
    raw = {"seed": seed, "images": [vars(entry) for entry in entries]}
    atomic.write_text(folder / "study.json", json.dumps(raw, indent=1))
    return Study(folder, tuple(entries), seed)


def open_study(run_dir: Path) -> Study:
    folder = Path(run_dir) / STUDY_DIR
    path = folder / "study.json"
    if not path.exists():
        raise UserError(f"no reader study in {run_dir}; start one with privsynth reader-study")
    raw = json.loads(path.read_text())
    return Study(folder, tuple(StudyImage(**entry) for entry in raw["images"]), raw["seed"])


def check_reader(name: str) -> str:
    name = name.strip()
    if not READER_NAME.fullmatch(name):
        raise UserError("a reader name is 1-64 letters, digits, spaces, '.', '_' or '-'")
    return name


def read_answers(study: Study) -> list[dict]:
    if not study.answers_path.exists():
        return []
    rows = []
    for line in study.answers_path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line torn by a crash mid-write; the reader is asked that image again
    return rows


def answered(study: Study, reader: str) -> dict[str, str]:
    """Image id -> the reader's first answer (a double submit does not change it)."""
    given: dict[str, str] = {}
    for row in read_answers(study):
        if row["reader"] == reader:
            given.setdefault(row["image"], row["answer"])
    return given


def record_answer(study: Study, reader: str, image_id: str, answer: str) -> None:
    """Append one answer and sync it to disk before the next image is shown."""
    if answer not in ANSWERS:
        raise UserError(f"answer must be one of {', '.join(ANSWERS)}")
    if study.by_id(image_id) is None:
        raise UserError(f"image {image_id!r} is not part of this study")
    if image_id in answered(study, reader):
        return
    line = json.dumps({"reader": reader, "image": image_id, "answer": answer, "time": time.time()})
    with open(study.answers_path, "a") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def next_image(study: Study, reader: str) -> StudyImage | None:
    given = answered(study, reader)
    return next((image for image in study.order(reader) if image.id not in given), None)


def binomial_p_value(correct: int, total: int) -> float:
    """Two-sided exact binomial test against chance (p = 1/2)."""
    if total == 0:
        return 1.0
    probabilities = [math.comb(total, k) / 2**total for k in range(total + 1)]
    observed = probabilities[correct]
    # Sum every outcome no more likely than the observed one (scipy's definition).
    return min(1.0, sum(p for p in probabilities if p <= observed * (1 + 1e-7)))


def score(study: Study) -> dict:
    """Accuracy per reader (and pooled) with a binomial test against guessing."""
    truth = {image.id: image.truth for image in study.images}
    outcomes: dict[str, list[tuple[str, str]]] = {}
    for reader in sorted({row["reader"] for row in read_answers(study)}):
        given = answered(study, reader)
        outcomes[reader] = [(truth[image], answer) for image, answer in given.items()]
    result = {
        "images": len(study.images),
        "readers": {reader: _score(pairs) for reader, pairs in outcomes.items()},
        "pooled": _score([pair for pairs in outcomes.values() for pair in pairs]),
    }
    atomic.write_text(study.scores_path, json.dumps(result, indent=1))
    return result


def _score(outcomes: list[tuple[str, str]]) -> dict:
    """outcomes: (truth, answer) pairs."""
    correct = sum(truth == answer for truth, answer in outcomes)
    synthetic = [answer for truth, answer in outcomes if truth == "synthetic"]
    real = [answer for truth, answer in outcomes if truth == "real"]
    total = len(outcomes)
    return {
        "answered": total,
        "correct": correct,
        "accuracy": correct / total if total else None,
        "p_value": binomial_p_value(correct, total),
        # Share of synthetic images called synthetic, and of real ones called real.
        "synthetic_detected": synthetic.count("synthetic") / len(synthetic) if synthetic else None,
        "real_recognised": real.count("real") / len(real) if real else None,
    }
