"""What the accountant's epsilon allows a membership attack, and the attacks that claim more.

(epsilon, delta)-DP bounds every membership test on a privacy unit by
TPR <= e^epsilon * FPR + delta (Kairouz et al. 2015); the accountant certifies a whole privacy
profile, an epsilon for every delta, and each pair bounds the test alike, so the tightest bound
is the lowest of them (the f-DP trade-off curve the profile implies; Dong, Roth & Su 2022).
Members come from every site and each is protected by its own site's guarantee: the bound of
the site with the largest epsilon holds for all. An image is a privacy unit only where the unit
is the image and no patient has several images; otherwise the bound is the group guarantee of
the most images a member's patient has.

A TPR whose interval lies above the bound is no measurement of membership that the accountant
allows: either the members and non-members differ as populations, or the mechanism leaks more
than the accountant says, which the DP audits decide.
"""

import math

import numpy as np

from attacks.dp_audit import AUDIT_OF_MECHANISM
from attacks.metrics import FPR_TARGETS
from common.privacy.accounting import epsilon_spent
from common.privacy.ledger import PrivacyLedger
from common.run_data import RunData
from common.run_folder import RunFolder, site_name
from methods import method_for

# The deltas of the profile, from the site's own up to this: larger ones bound nothing at the
# FPRs reported (the bound is at least delta).
PROFILE_MAX_DELTA = 0.05
PROFILE_POINTS_PER_DECADE = 4


def membership_bound(run: RunData) -> dict | None:
    """The bound on TPR at each reported FPR, with where it comes from; None where the run
    reports no epsilon or is non-private (nothing bounds its attacks)."""
    summary = RunFolder(run.run_dir).read_summary()
    epsilons = {
        site: float(eps)
        for site, eps in (summary.get("epsilon_per_site") or {}).items()
        if eps is not None
    }
    if not epsilons or any(math.isinf(eps) for eps in epsilons.values()):
        return None
    site = max(epsilons, key=epsilons.get)
    delta = float((summary.get("delta_per_site") or {}).get(site, run.config.privacy.delta))
    profile, source = _profile(run, site, epsilons[site], delta)
    group = _group_size(run)
    if group > 1:
        profile = [(group * eps, group * math.exp((group - 1) * eps) * d) for eps, d in profile]
        source += f", as the guarantee of a group of {group} images (a patient's most)"
    point = profile[0]
    return {
        "site": site,
        "epsilon": epsilons[site],
        "delta": delta,
        "group_size": group,
        "source": source,
        "audits": [AUDIT_OF_MECHANISM[m] for m in method_for(run.config).ledger_mechanisms],
        "tpr_bound": {
            f"{fpr:g}": {
                "epsilon_delta": _tpr_bound([point], fpr),
                "accountant": _tpr_bound(profile, fpr),
            }
            for fpr in FPR_TARGETS
        },
    }


def _profile(
    run: RunData, site: str, epsilon: float, delta: float
) -> tuple[list[tuple[float, float]], str]:
    """[(epsilon, delta) the site's guarantee holds at, its own first], and their source."""
    point = [(epsilon, delta)]
    ledger_path = _ledger_path(run, site)
    if ledger_path is None:
        return point, f"{site}'s epsilon {epsilon:.3g} at delta {delta:g} (the run's summary)"
    ledger = PrivacyLedger.open(ledger_path, **PrivacyLedger.read_settings(ledger_path))
    decades = math.log10(PROFILE_MAX_DELTA / delta)
    count = max(2, int(decades * PROFILE_POINTS_PER_DECADE) + 1)
    deltas = np.geomspace(delta, PROFILE_MAX_DELTA, count)[1:]
    history = ledger.history()
    point += [
        (epsilon_spent(history, delta=float(d), accountant=ledger.accountant), float(d))
        for d in deltas
    ]
    return point, (
        f"{site}'s epsilon {epsilon:.3g} at delta {delta:g} and the {ledger.accountant} "
        f"accountant's privacy profile of its ledger (delta {delta:g} to {PROFILE_MAX_DELTA:g})"
    )


def _ledger_path(run: RunData, site: str):
    """The simulated site's ledger in the run folder, if `site` is one and it is there."""
    for partition in range(run.config.federation.num_sites):
        path = RunFolder(run.run_dir).site(partition).ledger
        if site_name(partition) == site and path.exists():
            return path
    return None


def _group_size(run: RunData) -> int:
    if run.config.privacy.unit == "patient" or run.members.patient_ids is None:
        return 1
    _, counts = np.unique(run.members.patient_ids, return_counts=True)
    return int(counts.max(initial=1))


def _tpr_bound(profile: list[tuple[float, float]], fpr: float) -> float:
    return min(1.0, *(math.exp(eps) * fpr + d for eps, d in profile))


def above_bound(membership: dict[str, dict], bound: dict | None) -> list[dict]:
    """Each score's TPR at each resolved FPR whose interval lies above the bound."""
    if bound is None:
        return []
    found = []
    for score, metrics in membership.items():
        for fpr, cell in metrics["tpr_at_fpr"].items():
            allowed = bound["tpr_bound"].get(fpr)
            if allowed is None or not cell["resolved"]:
                continue
            tightest = min(allowed.values())
            if cell["ci"][0] > tightest:
                found.append(
                    {
                        "score": score,
                        "fpr": fpr,
                        "tpr": cell["tpr"],
                        "tpr_ci_low": cell["ci"][0],
                        "bound": tightest,
                        "epsilon": bound["epsilon"],
                    }
                )
    return found
