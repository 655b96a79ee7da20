"""The one owner of the folders privsynth writes: a run, a site's state, a sweep study.

Every other module reaches these files through RunFolder, SiteFolder and StudyFolder, never by
spelling their names, so the layout and each file's format are defined here and nowhere else.

A run folder:
    config.yaml      the resolved config            split.json     holdout, site and untrained
                                                                    indices
    stats.jsonl      one line per round              checkpoint.pt  the server's resumable state
    generator.pt     the final generator             summary.json   what the run and later
    samples.png      one sample row per class                       commands found
    training.png     epsilon and losses per round    synthetic.npz  the synthetic set (MedMNIST
    synthetic/       the same as PNGs + labels.csv                  layout)
    evaluation.json/.md, evaluation-*.png            what `evaluate` found
    attacks.json/.md, attack-figures/                what `attack` found
    sites/site-<i>/  a simulated site's state (a SiteFolder)
"""

import csv
import io
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from common import atomic
from common.config import Config, ModelConfig, build_dataclass, config_to_yaml, load_config
from common.errors import UserError


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass(frozen=True)
class SavedGenerator:
    """What generator.pt holds: the weights and what is needed to rebuild the network."""

    state_dict: dict[str, torch.Tensor]
    class_names: tuple[str, ...]
    multi_label: bool
    resolution: int
    model: ModelConfig

    def build(self):
        """The generator in eval mode."""
        from common.models import build_generator

        generator = build_generator(len(self.class_names), self.resolution, self.model)
        generator.load_state_dict(self.state_dict)
        return generator.eval()


@dataclass(frozen=True)
class SiteFolder:
    """A site's private state. A simulated site keeps one ledger and one run's state in its
    folder; a deployed site keeps one ledger per dataset and one state folder per run."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    @property
    def ledger(self) -> Path:
        return self.path / "ledger.json"

    def dataset_ledger(self, ledger_key: str) -> Path:
        return self.path / "ledgers" / f"{ledger_key}.json"

    def ledger_files(self) -> list[Path]:
        """Every ledger this folder holds (a simulated site's one, or a deployed site's)."""
        return sorted(self.path.glob(self.ledger.name)) + sorted(
            (self.path / "ledgers").glob("*.json")
        )

    def run_state(self, run_key: str) -> "SiteFolder":
        """A deployed site's folder for one run's state."""
        return SiteFolder(self.path / "runs" / run_key)

    @property
    def training_state(self) -> Path:
        """The discriminator and optimizers between rounds (private to the site)."""
        return self.path / "training-state.pt"

    @property
    def last_reply(self) -> Path:
        return self.path / "last-reply.pt"

    @property
    def log(self) -> Path:
        return self.path / "site.log"

    @property
    def cache(self) -> Path:
        return self.path / "cache"


@dataclass(frozen=True)
class RunFolder:
    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ---- files ------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def split_file(self) -> Path:
        return self.path / "split.json"

    @property
    def stats_file(self) -> Path:
        return self.path / "stats.jsonl"

    @property
    def checkpoint_file(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def generator_file(self) -> Path:
        return self.path / "generator.pt"

    @property
    def summary_file(self) -> Path:
        return self.path / "summary.json"

    @property
    def samples_image(self) -> Path:
        return self.path / "samples.png"

    @property
    def training_plot(self) -> Path:
        return self.path / "training.png"

    @property
    def synthetic_file(self) -> Path:
        return self.path / "synthetic.npz"

    @property
    def synthetic_dir(self) -> Path:
        return self.path / "synthetic"

    @property
    def synthetic_labels(self) -> Path:
        return self.synthetic_dir / "labels.csv"

    @property
    def evaluation_file(self) -> Path:
        return self.path / "evaluation.json"

    @property
    def evaluation_report(self) -> Path:
        return self.path / "evaluation.md"

    def evaluation_figure(self, name: str) -> Path:
        """A figure `privsynth evaluate` draws (e.g. "samples", "roc", "realism")."""
        return self.path / f"evaluation-{name}.png"

    @property
    def attack_figures(self) -> Path:
        """The folder of the attack suite's figures (ROC curves, closest copies)."""
        return self.path / "attack-figures"

    @property
    def attacks_file(self) -> Path:
        return self.path / "attacks.json"

    @property
    def attacks_report(self) -> Path:
        return self.path / "attacks.md"

    @property
    def sites_dir(self) -> Path:
        return self.path / "sites"

    @property
    def logs_dir(self) -> Path:
        """Flower's own logs of a simulated run (the SuperLink's and the run's stream)."""
        return self.path / "logs"

    @property
    def error_file(self) -> Path:
        """Why the server stopped a run it could not train (a user's mistake, in words)."""
        return self.path / "error.txt"

    def site(self, partition_id: int) -> SiteFolder:
        """A simulated site's state folder."""
        return SiteFolder(self.sites_dir / site_name(partition_id))

    def cache(self, kind: str) -> Path:
        """A cache shared by the runs beside this one (e.g. trained feature extractors)."""
        return self.path.parent / ".cache" / kind

    # ---- checks -----------------------------------------------------------------------
    def require(self, path: Path, what: str) -> Path:
        if not self.path.is_dir():
            raise UserError(f"run folder {self.path} does not exist; pass a `privsynth run` folder")
        if not path.exists():
            raise UserError(
                f"{path} is missing: {what}. Is {self.path} a finished `privsynth run` folder?"
            )
        return path

    @property
    def started(self) -> bool:
        return self.config_file.exists()

    @property
    def trained(self) -> bool:
        return self.summary_file.exists()

    @property
    def evaluated(self) -> bool:
        return self.evaluation_file.exists()

    @property
    def attacked(self) -> bool:
        return self.attacks_file.exists()

    @property
    def resumable(self) -> bool:
        return self.checkpoint_file.exists()

    # ---- config and split ---------------------------------------------------------------
    def write_config(self, config: Config) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.config_file, config_to_yaml(config))

    def read_config(self) -> Config:
        return load_config(str(self.require(self.config_file, "the run's resolved config")))

    def write_split(self, split: dict) -> None:
        """{"holdout": [...], "sites": [[...], ...], "untrained": [[...], ...]}: indices into
        the data source; "untrained" (each site's images that no site trained on) is missing
        from runs planned before it was kept."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic.write_text(self.split_file, json.dumps(split))

    def read_split(self) -> dict:
        return json.loads(self.require(self.split_file, "the run's holdout/site split").read_text())

    # ---- per-round log and checkpoint -----------------------------------------------------
    def append_stats(self, row: dict) -> None:
        with open(self.stats_file, "a") as log:
            log.write(json.dumps(row) + "\n")

    def read_stats(self) -> list[dict]:
        """The per-round log; a last line torn by a kill mid-write is skipped."""
        if not self.stats_file.exists():
            return []
        lines = [line for line in self.stats_file.read_text().splitlines() if line.strip()]
        rows = [json.loads(line) for line in lines[:-1]]
        try:
            rows += [json.loads(line) for line in lines[-1:]]
        except json.JSONDecodeError:
            pass
        return rows

    def keep_stats_until(self, last_round: int) -> None:
        """Drop rows of rounds after the checkpoint (they will be run again)."""
        rows = [row for row in self.read_stats() if row["round"] <= last_round]
        atomic.write_text(self.stats_file, "".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        atomic.torch_save(state, self.checkpoint_file)

    def load_checkpoint(self) -> dict[str, Any]:
        return torch.load(self.checkpoint_file, map_location="cpu", weights_only=True)

    # ---- generator and synthetic set -------------------------------------------------------
    def write_generator(
        self,
        *,
        state_dict: dict[str, torch.Tensor],
        class_names: tuple[str, ...],
        multi_label: bool,
        resolution: int,
        model: ModelConfig,
    ) -> None:
        saved = {
            "state_dict": state_dict,
            "class_names": list(class_names),
            "multi_label": multi_label,
            "resolution": resolution,
            "model": asdict(model),
        }
        atomic.torch_save(saved, self.generator_file)

    def read_generator(self) -> SavedGenerator:
        saved = torch.load(
            self.require(self.generator_file, "the run's final generator"),
            map_location="cpu",
            weights_only=True,
        )
        return SavedGenerator(
            state_dict=saved["state_dict"],
            class_names=tuple(saved["class_names"]),
            multi_label=bool(saved["multi_label"]),
            resolution=int(saved["resolution"]),
            # Parsed like a config section: keys added since the file was written take their
            # defaults.
            model=build_dataclass(ModelConfig, saved["model"], "generator.pt model"),
        )

    def write_synthetic(
        self,
        *,
        images: np.ndarray,
        conditions: np.ndarray,
        row_names: list[str],
        class_names: tuple[str, ...],
        multi_label: bool,
    ) -> int:
        """PNG files + labels.csv under synthetic/, and synthetic.npz in the MedMNIST layout
        (`train_images`, `train_labels`: class indices, or one 0/1 column per finding)."""
        from PIL import Image

        (self.synthetic_dir / "images").mkdir(parents=True, exist_ok=True)
        with open(self.synthetic_labels, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["file", "label", *class_names])
            for i, (image, condition, name) in enumerate(zip(images, conditions, row_names)):
                file = f"images/{i:06d}.png"
                Image.fromarray(image).save(self.synthetic_dir / file)
                writer.writerow([file, name, *condition.astype(int).tolist()])
        stacked = np.asarray(conditions).astype(np.uint8)
        train_labels = stacked if multi_label else stacked.argmax(axis=1)[:, None]
        buffer = io.BytesIO()
        np.savez_compressed(
            buffer,
            train_images=np.asarray(images),
            train_labels=train_labels,
            class_names=np.array(class_names),
        )
        atomic.write_bytes(self.synthetic_file, buffer.getvalue())
        return len(images)

    def read_synthetic(self) -> tuple[np.ndarray, np.ndarray]:
        """(images uint8 (N, R, R), labels as written: (N, 1) indices or (N, C) findings)."""
        path = self.require(self.synthetic_file, "the run's synthetic dataset")
        with np.load(path, allow_pickle=False) as arrays:
            return arrays["train_images"], arrays["train_labels"]

    # ---- summary, evaluation, attacks ------------------------------------------------------
    def write_error(self, message: str) -> None:
        atomic.write_text(self.error_file, message + "\n")

    def read_error(self) -> str | None:
        """The server's last error for this run, or None."""
        if not self.error_file.exists():
            return None
        return self.error_file.read_text().strip()

    def clear_error(self) -> None:
        self.error_file.unlink(missing_ok=True)

    def write_summary(self, summary: dict) -> None:
        atomic.write_text(self.summary_file, json.dumps(summary, indent=2, default=str))

    def read_summary(self) -> dict:
        """The summary, or {} before the run has finished."""
        return _read_json(self.summary_file)

    def update_summary(self, **fields: Any) -> None:
        """Add fields to an existing summary (later commands record what they found)."""
        if self.summary_file.exists():
            self.write_summary({**self.read_summary(), **fields})

    def write_evaluation(self, result: dict, markdown: str) -> None:
        atomic.write_text(self.evaluation_file, json.dumps(result, indent=2))
        atomic.write_text(self.evaluation_report, markdown)

    def read_evaluation(self) -> dict:
        return _read_json(self.evaluation_file)

    def write_attacks(self, report_json: str, markdown: str) -> None:
        atomic.write_text(self.attacks_file, report_json)
        atomic.write_text(self.attacks_report, markdown)

    def read_attacks(self) -> dict:
        return _read_json(self.attacks_file)


def site_name(partition_id: int) -> str:
    """A simulated site's name, as its metrics and its state folder carry it."""
    return f"site-{partition_id}"


@dataclass(frozen=True)
class StudyFolder:
    """A sweep: one run folder per epsilon, the table, the plots and report.html."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def member(self, label: str) -> RunFolder:
        return RunFolder(self.path / f"eps-{label}")

    @property
    def request_file(self) -> Path:
        """sweep.json: the pinned config and the epsilons asked for."""
        return self.path / "sweep.json"

    @property
    def timings_file(self) -> Path:
        return self.path / "timings.jsonl"

    @property
    def table_markdown(self) -> Path:
        return self.path / "table.md"

    @property
    def table_json(self) -> Path:
        return self.path / "table.json"

    @property
    def table_csv(self) -> Path:
        return self.path / "table.csv"

    @property
    def tradeoff_plot(self) -> Path:
        return self.path / "tradeoff.png"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def report_screenshot(self) -> Path:
        return self.path / "report.png"

    def cache(self, kind: str) -> Path:
        return self.path / ".cache" / kind

    def append_timing(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.timings_file, "a") as log:
            log.write(json.dumps(row) + "\n")

    def read_timings(self) -> list[dict]:
        if not self.timings_file.exists():
            return []
        return [json.loads(line) for line in self.timings_file.read_text().splitlines() if line]
