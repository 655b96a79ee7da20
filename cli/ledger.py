"""`privsynth ledger`: a site's privacy spending history, entry by entry."""

import argparse
import time
from pathlib import Path

from common.errors import UserError
from common.run_folder import SiteFolder


def add_parser(commands) -> None:
    ledger = commands.add_parser("ledger", help="print a site's privacy spending history")
    ledger.add_argument(
        "site_dir", help="a site's state directory (its ledger or ledgers) or a ledger file"
    )
    ledger.set_defaults(handler=cmd_ledger)


def _ledger_files(site_dir: Path) -> list[Path]:
    """A simulated site's ledger, or a deployed site's one ledger per dataset."""
    if site_dir.is_file():
        return [site_dir]
    found = SiteFolder(site_dir).ledger_files()
    if not found:
        raise UserError(f"no privacy ledger in {site_dir}; give a site's state directory")
    return found


def cmd_ledger(args: argparse.Namespace) -> int:
    from common.privacy.accounting import epsilon_spent
    from common.privacy.ledger import PrivacyLedger

    for number, path in enumerate(_ledger_files(Path(args.site_dir))):
        ledger = PrivacyLedger.open(path, **PrivacyLedger.read_settings(path))
        print(("\n" if number else "") + f"privacy ledger {path}")
        print(f"(unit {ledger.unit}, delta {ledger.delta:g}, accountant {ledger.accountant})")
        print(
            f"{'round':>6} {'mechanism':<13} {'steps':>7} {'noise':>8} {'rate':>8} "
            f"{'epsilon':>9}  recorded"
        )
        history = []
        for entry in ledger.entries:
            history.append((entry.noise_multiplier, entry.sample_rate, entry.steps))
            epsilon = epsilon_spent(history, delta=ledger.delta, accountant=ledger.accountant)
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(entry.time))
            print(
                f"{entry.round:>6} {entry.mechanism:<13} {entry.steps:>7} "
                f"{entry.noise_multiplier:>8.4f} "
                f"{entry.sample_rate:>8.4f} {epsilon:>9.3f}  {when}"
            )
        print(f"total: {ledger.steps} DP-SGD steps, epsilon {ledger.epsilon():.3f}")
        for prior in sorted({entry.prior for entry in ledger.entries if entry.prior}):
            print(f"started from public prior sha256 {prior} (no epsilon)")
    return 0
