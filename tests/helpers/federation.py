"""The server loop's exchange with real sites run in this process instead of by Flower."""

import torch

from client.site import RoundRefused
from client.site_config import simulated_site
from common.protocol import SiteReply
from server.federation import SiteFailure


def in_process_exchange(config, run_dir, calls=None, down=None):
    """Sites run in this process; `down(site_id, round)` makes a site fail that round."""

    def exchange(request, skip):
        replies, failures = [], []
        for site_id in range(config.federation.num_sites):
            if site_id in skip:
                continue
            if down is not None and down(site_id, request.round_request.round):
                failures.append(SiteFailure(site_id, "site crashed", refused=False))
                continue
            site = simulated_site(config, site_id, run_dir)
            try:
                result = site.run_round(
                    config,
                    request.round_request,
                    request.generator,
                    request.discriminator,
                    torch.device("cpu"),
                )
                replies.append(SiteReply(site.policy.name, site_id, result))
            except RoundRefused as refusal:
                failures.append(SiteFailure(site_id, str(refusal), refused=True))
        if calls is not None:
            calls.append(request)
        return replies, failures

    return exchange
