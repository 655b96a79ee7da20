"""A site's privacy ledger: every DP round it took, persisted before anything leaves the site.

State only; the math lives in accounting.py. The ledger fixes the noise multiplier and
sample rate at calibration so later rounds cannot be talked into less noise.
"""

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common import atomic
from common.errors import UserError
from common.privacy.accounting import HistoryEntry, epsilon_spent


@dataclass(frozen=True)
class LedgerEntry:
    round: int
    noise_multiplier: float
    sample_rate: float
    steps: int
    time: float


@dataclass
class PrivacyLedger:
    path: Path
    delta: float
    accountant: str
    noise_multiplier: float | None = None
    sample_rate: float | None = None
    entries: list[LedgerEntry] = field(default_factory=list)

    @classmethod
    def open(cls, path: Path, delta: float, accountant: str) -> "PrivacyLedger":
        path = Path(path)
        if not path.exists():
            return cls(path=path, delta=delta, accountant=accountant)
        try:
            raw = json.loads(path.read_text())
            ledger = cls(
                path=path,
                delta=raw["delta"],
                accountant=raw["accountant"],
                noise_multiplier=raw["noise_multiplier"],
                sample_rate=raw["sample_rate"],
                entries=[LedgerEntry(**entry) for entry in raw["entries"]],
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(
                f"privacy ledger {path} is unreadable ({error}); it records the epsilon this "
                "site already spent, so restore it from backup rather than deleting it"
            ) from None
        if (ledger.delta, ledger.accountant) != (delta, accountant):
            raise UserError(
                f"privacy ledger {path} was kept with delta={ledger.delta}, accountant="
                f"{ledger.accountant}; this run asks for delta={delta}, accountant={accountant}. "
                "Use the ledger's settings or a new site state directory for a new dataset"
            )
        return ledger

    @staticmethod
    def read_settings(path: Path) -> dict:
        """The delta and accountant a ledger file was kept with."""
        try:
            raw = json.loads(Path(path).read_text())
            return {"delta": raw["delta"], "accountant": raw["accountant"]}
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise UserError(f"privacy ledger {path} is unreadable ({error})") from None

    @property
    def calibrated(self) -> bool:
        return self.noise_multiplier is not None

    def calibrate(self, noise_multiplier: float, sample_rate: float) -> None:
        self.noise_multiplier = noise_multiplier
        self.sample_rate = sample_rate
        self.save()

    def history(self) -> list[HistoryEntry]:
        return [(e.noise_multiplier, e.sample_rate, e.steps) for e in self.entries]

    @property
    def steps(self) -> int:
        return sum(e.steps for e in self.entries)

    def epsilon(self) -> float:
        return epsilon_spent(self.history(), self.delta, self.accountant)

    def epsilon_after(self, steps: int) -> float:
        """Epsilon if `steps` more steps are taken at the calibrated noise and sample rate."""
        extra = [(self.noise_multiplier, self.sample_rate, steps)]
        return epsilon_spent(self.history() + extra, self.delta, self.accountant)

    def record(self, round_number: int, steps: int) -> None:
        """Record a round's DP steps; saved atomically before the steps are taken."""
        if not self.calibrated:
            raise RuntimeError("ledger must be calibrated before recording steps")
        self.entries.append(
            LedgerEntry(round_number, self.noise_multiplier, self.sample_rate, steps, time.time())
        )
        self.save()

    def record_release(self, round_number: int, noise_multiplier: float) -> None:
        """Record a one-shot Gaussian release (sample rate 1, one step), before it is made."""
        self.entries.append(LedgerEntry(round_number, noise_multiplier, 1.0, 1, time.time()))
        self.save()

    def save(self) -> None:
        raw = asdict(self)
        raw.pop("path")
        atomic.write_text(self.path, json.dumps(raw, indent=1))
