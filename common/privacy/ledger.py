"""A site's privacy ledger: every DP mechanism it ran, persisted before anything leaves the site.

State only; the math lives in accounting.py. The ledger is kept for one privacy unit, delta
and accountant, and refuses to be opened with others: spending counted per image and per
patient does not add up. It fixes the noise multiplier and sample rate at calibration so
later rounds cannot be talked into less noise. Every change happens in a transaction under
an exclusive file lock, so two processes on one ledger cannot both pass the budget check and
neither can erase the other's entry.
"""

import fcntl
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import atomic
from common.errors import UserError
from common.privacy.accounting import SIZE_NOISE_MULTIPLIER, HistoryEntry, epsilon_spent

# What each entry records: the size estimate behind the sample rate, DP-SGD steps, or a
# one-shot Gaussian release.
MECHANISMS = ("size-estimate", "dp-sgd", "release")
LEDGER_KEYS = (
    "unit",
    "delta",
    "accountant",
    "noise_multiplier",
    "sample_rate",
    "unit_count_estimate",
    "entries",
)


@dataclass(frozen=True)
class LedgerEntry:
    round: int
    mechanism: str
    noise_multiplier: float
    sample_rate: float
    steps: int
    time: float
    # The sha256 of the public prior (common/prior) the run's models started from; "" for
    # none, and in ledgers kept before priors. Public data: it costs no epsilon.
    prior: str = ""

    def __post_init__(self) -> None:
        if self.mechanism not in MECHANISMS:
            raise ValueError(f"unknown mechanism {self.mechanism!r}")


@dataclass
class PrivacyLedger:
    path: Path
    unit: str
    delta: float
    accountant: str
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    # The DP estimate of the number of privacy units (None until a DP-SGD site makes one).
    unit_count_estimate: float | None = None
    entries: list[LedgerEntry] = field(default_factory=list)
    _locked: bool = field(default=False, repr=False, compare=False)

    @classmethod
    def open(cls, path: Path, *, unit: str, delta: float, accountant: str) -> "PrivacyLedger":
        """The ledger at `path` (empty if none), refused unless kept with these settings."""
        ledger = cls(path=Path(path), unit=unit, delta=delta, accountant=accountant)
        ledger._reload()
        return ledger

    @staticmethod
    def read_settings(path: Path) -> dict:
        """The unit, delta and accountant a ledger file was kept with."""
        raw = _read(Path(path))
        return {key: raw[key] for key in ("unit", "delta", "accountant")}

    def _reload(self) -> None:
        if not self.path.exists():
            return
        raw = _read(self.path)
        kept = (raw["unit"], raw["delta"], raw["accountant"])
        if kept != (self.unit, self.delta, self.accountant):
            raise UserError(
                f"privacy ledger {self.path} was kept with unit={kept[0]}, delta={kept[1]}, "
                f"accountant={kept[2]}; this site asks for unit={self.unit}, delta={self.delta}, "
                f"accountant={self.accountant}. Keep the ledger's settings in site.yaml, or use "
                "a new state directory for a new dataset"
            )
        self.noise_multiplier = raw["noise_multiplier"]
        self.sample_rate = raw["sample_rate"]
        self.unit_count_estimate = raw["unit_count_estimate"]
        self.entries = [LedgerEntry(**entry) for entry in raw["entries"]]

    @contextmanager
    def transaction(self) -> Iterator["PrivacyLedger"]:
        """Hold the ledger's exclusive lock, re-read it, and save what changed on exit.

        Check-and-record inside one transaction is atomic across processes; an exception
        inside leaves the file as it was.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                self._reload()
                self._locked = True
                yield self
                self._save()
            finally:
                self._locked = False
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- reading -----------------------------------------------------------------------

    @property
    def calibrated(self) -> bool:
        return self.noise_multiplier is not None

    def history(self) -> list[HistoryEntry]:
        return [(e.noise_multiplier, e.sample_rate, e.steps) for e in self.entries]

    @property
    def steps(self) -> int:
        """DP-SGD steps taken."""
        return sum(e.steps for e in self.entries if e.mechanism == "dp-sgd")

    def epsilon(self) -> float:
        return epsilon_spent(self.history(), delta=self.delta, accountant=self.accountant)

    def epsilon_after(self, steps: int) -> float:
        """Epsilon if `steps` more steps are taken at the calibrated noise and sample rate."""
        extra = [(self.noise_multiplier, self.sample_rate, steps)]
        return epsilon_spent(self.history() + extra, delta=self.delta, accountant=self.accountant)

    # ---- changes (inside a transaction) -------------------------------------------------

    def record_size_estimate(self, *, round_number: int, estimate: float) -> None:
        """Record the Gaussian estimate of the unit count (noise SIZE_NOISE_MULTIPLIER)."""
        self._require_lock()
        self.unit_count_estimate = estimate
        self._append(round_number, "size-estimate", SIZE_NOISE_MULTIPLIER, 1.0, 1)

    def calibrate(self, *, noise_multiplier: float, sample_rate: float) -> None:
        self._require_lock()
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate

    def record(self, *, round_number: int, steps: int, prior: str = "") -> None:
        """Record a round's DP-SGD steps, before the steps are taken, with the hash of the
        public prior the run started from ("" for none)."""
        self._require_lock()
        if not self.calibrated:
            raise RuntimeError("ledger must be calibrated before recording steps")
        self._append(round_number, "dp-sgd", self.noise_multiplier, self.sample_rate, steps, prior)

    def record_release(
        self, *, round_number: int, noise_multiplier: float, prior: str = ""
    ) -> None:
        """Record a one-shot Gaussian release (sample rate 1, one step), before it is made,
        with the hash of the public prior whose features it embeds ("" for none)."""
        self._require_lock()
        self._append(round_number, "release", noise_multiplier, 1.0, 1, prior)

    def _append(
        self,
        round_number: int,
        mechanism: str,
        sigma: float,
        rate: float,
        steps: int,
        prior: str = "",
    ) -> None:
        entry = LedgerEntry(round_number, mechanism, sigma, rate, steps, time.time(), prior)
        self.entries.append(entry)

    def _require_lock(self) -> None:
        if not self._locked:
            raise RuntimeError("change a privacy ledger only inside ledger.transaction()")

    def _save(self) -> None:
        raw = asdict(self)
        for private in ("path", "_locked"):
            raw.pop(private)
        atomic.write_text(self.path, json.dumps(raw, indent=1))


def _read(path: Path) -> dict:
    try:
        raw = json.loads(path.read_text())
        missing = [key for key in LEDGER_KEYS if key not in raw]
        if missing:
            raise KeyError(missing[0])
        for entry in raw["entries"]:
            LedgerEntry(**entry)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserError(
            f"privacy ledger {path} is unreadable ({error!r}); it records the epsilon this "
            "site already spent, so restore it from backup rather than deleting it"
        ) from None
    return raw
