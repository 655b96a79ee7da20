"""The attack registry and what every attack returns."""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from common.registry import Registry

if TYPE_CHECKING:
    from attacks.context import AttackContext

# Threat models, in report order: what the attacker sees.
SYNTHETIC_ONLY = "synthetic data only"
GENERATOR_ACCESS = "the generator"
DISCRIMINATOR_ACCESS = "a site's discriminator"
MECHANISM_AUDIT = "the DP mechanism (audit)"
THREAT_MODELS = (SYNTHETIC_ONLY, GENERATOR_ACCESS, DISCRIMINATOR_ACCESS, MECHANISM_AUDIT)


@dataclass
class AttackResult:
    """findings: the attack's own numbers (JSON-able); membership: name -> membership_metrics;
    leaked: whether the attack found leakage beyond its chance baseline; figures: file names
    relative to the run folder; skipped: why the attack could not run (then nothing else).

    power: the positive control (attacks.controls.power): what the attack found of what was
    planted for it; without it, the attack's silence proves nothing.
    negative_control: {"control": what replaced the members, "training_population": whether
    that is real images of the training population (else half of the non-members, which cannot
    show a population difference), "membership": name -> membership_metrics of the same scores
    on it against the non-members, and for a control of the training population
    "members_against_control": name -> membership_metrics of the members against it}
    (membership attacks)."""

    findings: dict = field(default_factory=dict)
    membership: dict[str, dict] = field(default_factory=dict)
    leaked: bool = False
    summary: str = ""
    figures: list[str] = field(default_factory=list)
    skipped: str = ""
    power: dict = field(default_factory=dict)
    negative_control: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Attack:
    """threat_model: one of THREAT_MODELS; member_direction: what a higher score means."""

    name: str
    threat_model: str
    description: str
    member_direction: str
    run: Callable[["AttackContext"], AttackResult]


ATTACKS: Registry[Attack] = Registry("attack")


def register(
    name: str, threat_model: str, description: str, member_direction: str
) -> Callable[[Callable], Callable]:
    """Decorator: register `run(context) -> AttackResult` under `name`."""

    def add(run: Callable[["AttackContext"], AttackResult]) -> Callable:
        ATTACKS.register(name)(Attack(name, threat_model, description, member_direction, run))
        return run

    return add
