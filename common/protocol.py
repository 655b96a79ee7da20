"""The messages between server and sites, as Flower records.

Server -> site (message type `train`): ArrayRecord "generator", optionally ArrayRecord
"discriminator", ConfigRecord "request" (round, local_steps, planned_steps,
share_discriminator, config = the resolved YAML, run_dir).
Site -> server: ArrayRecord "generator", optionally "discriminator", MetricRecord "metrics",
ConfigRecord "site" (name); for the mean_embedding method an ArrayRecord "release" (noised
per-class feature sums and counts) and an empty generator. A refusal or failure is an error
reply carrying one of ERROR_REASONS' codes and its fixed text, nothing else.

Every field of a reply is either the output of a DP mechanism in the site's ledger (or
post-processing of one: DP_METRICS, the weights, the release) or the same for any two
neighbouring datasets: the site's name and settings, and the accountant's epsilon over the
mechanisms run, whose sample rate divides by the ledger's DP size estimate, never by the
exact count. No exact counts, timings or text derived from the data.
"""

from dataclasses import dataclass
from enum import IntEnum

import torch
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

# Set by the simulation runtime (server.simulation_runtime) in the processes of a simulation's
# sites, never by a coordinator: a request cannot turn a deployed site into a simulated one.
SIMULATION_ENV = "PRIVSYNTH_SIMULATED_SITES"


class SiteError(IntEnum):
    """The only things a site says when it does not reply with a result."""

    REFUSED_BUDGET = 4101
    REFUSED_POLICY = 4102
    MALFORMED_REQUEST = 4103
    SITE_DATA_ERROR = 4104
    INTERNAL_ERROR = 4105


# Fixed texts: the details stay in the site's own log.
ERROR_REASONS = {
    SiteError.REFUSED_BUDGET: "refused: the site's privacy budget does not allow this request",
    SiteError.REFUSED_POLICY: "refused: the site's own settings do not allow this request",
    SiteError.MALFORMED_REQUEST: "refused: malformed request",
    SiteError.SITE_DATA_ERROR: "failed: the site could not read its data",
    SiteError.INTERNAL_ERROR: "failed: internal error at the site",
}
# A refused request is not sent again in the same round; a failed one may be.
REFUSALS = (SiteError.REFUSED_BUDGET, SiteError.REFUSED_POLICY, SiteError.MALFORMED_REQUEST)

# Metrics that are post-processing of the site's DP-SGD iterates (losses of the DP
# discriminator on generated images) or of its DP size estimate. Every other metric is the
# same for neighbouring datasets.
DP_METRICS = ("d_loss_fake", "g_loss", "g_steps", "unit_count_estimate")


@dataclass(frozen=True)
class RoundRequest:
    round: int
    local_steps: int
    planned_steps: int
    share_discriminator: bool


@dataclass(frozen=True)
class RoundResult:
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None
    metrics: dict[str, float]
    release: dict[str, torch.Tensor] | None = None


@dataclass(frozen=True)
class TrainRequest:
    round_request: RoundRequest
    config_yaml: str
    run_dir: str
    generator: dict[str, torch.Tensor]
    discriminator: dict[str, torch.Tensor] | None


@dataclass(frozen=True)
class SiteReply:
    site: str
    node_id: int
    result: RoundResult


def encode_request(request: TrainRequest) -> RecordDict:
    r = request.round_request
    content = RecordDict(
        {
            "generator": ArrayRecord(request.generator),
            "request": ConfigRecord(
                {
                    "round": r.round,
                    "local_steps": r.local_steps,
                    "planned_steps": r.planned_steps,
                    "share_discriminator": r.share_discriminator,
                    "config": request.config_yaml,
                    "run_dir": request.run_dir,
                }
            ),
        }
    )
    if request.discriminator is not None:
        content["discriminator"] = ArrayRecord(request.discriminator)
    return content


def decode_request(content: RecordDict) -> TrainRequest:
    fields = content["request"]
    discriminator = content.get("discriminator")
    return TrainRequest(
        round_request=RoundRequest(
            round=int(fields["round"]),
            local_steps=int(fields["local_steps"]),
            planned_steps=int(fields["planned_steps"]),
            share_discriminator=bool(fields["share_discriminator"]),
        ),
        config_yaml=str(fields["config"]),
        run_dir=str(fields["run_dir"]),
        generator=content["generator"].to_torch_state_dict(),
        discriminator=None if discriminator is None else discriminator.to_torch_state_dict(),
    )


def encode_reply(site: str, result: RoundResult) -> RecordDict:
    content = RecordDict(
        {
            "generator": ArrayRecord(result.generator),
            "metrics": MetricRecord(result.metrics),
            "site": ConfigRecord({"name": site}),
        }
    )
    if result.discriminator is not None:
        content["discriminator"] = ArrayRecord(result.discriminator)
    if result.release is not None:
        content["release"] = ArrayRecord(result.release)
    return content


def decode_reply(message: Message) -> SiteReply:
    content = message.content
    discriminator = content.get("discriminator")
    release = content.get("release")
    return SiteReply(
        site=str(content["site"]["name"]),
        node_id=message.metadata.src_node_id,
        result=RoundResult(
            generator=content["generator"].to_torch_state_dict(),
            discriminator=None if discriminator is None else discriminator.to_torch_state_dict(),
            metrics={key: float(value) for key, value in content["metrics"].items()},
            release=None if release is None else release.to_torch_state_dict(),
        ),
    )
