"""What a server learns from a site's replies does not depend on any one record, or patient,
except through the site's DP mechanisms.

Two deployed sites hold neighbouring datasets (one image, or all images of one patient, less)
and get the same requests through the site's real request handler. Every field of their
replies that is not a DP output (weights, release, DP_METRICS) must be equal. The DP size
estimate is the one input that differs in distribution; both ledgers hold the same estimate,
as a coupling of its noise would give, so that what is compared is everything else.
"""

import pytest

from common.protocol import SiteError
from tests.helpers.neighbours import ask, deployed_site, neighbour_data
from tests.helpers.sites import LAST_REFUSED, encoded_requests, public_view


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize("method", ["dpgan", "mean_embedding"])
def test_neighbouring_sites_reply_alike_but_for_their_dp_outputs(tmp_path, method, unit):
    full = deployed_site(tmp_path / "full", neighbour_data(drop="none"), unit)
    neighbour = deployed_site(tmp_path / "neighbour", neighbour_data(drop=unit), unit)

    views = {
        name: [public_view(ask(node_config, request)) for request in encoded_requests(method)]
        for name, node_config in (("full", full), ("neighbour", neighbour))
    }

    assert views["full"] == views["neighbour"]
    assert "metrics" in views["full"][0]
    refused = views["full"][-1] == ("error", SiteError.REFUSED_BUDGET)
    assert refused == LAST_REFUSED[method]


@pytest.mark.parametrize("unit", ["image", "patient"])
@pytest.mark.parametrize("method", ["dpgan", "mean_embedding"])
def test_a_site_of_one_unit_and_its_empty_neighbour_reply_alike(tmp_path, method, unit):
    # Refusing an empty dataset would tell the coordinator that the one unit is there.
    one_patient = neighbour_data(drop="none").subset([0, 20])  # p0's two images
    one_unit = one_patient if unit == "patient" else one_patient.subset([0])
    full = deployed_site(tmp_path / "full", one_unit, unit)
    empty = deployed_site(tmp_path / "empty", one_unit.subset([]), unit)

    views = [
        [public_view(ask(node_config, request)) for request in encoded_requests(method)]
        for node_config in (full, empty)
    ]

    assert views[0] == views[1]
    assert "metrics" in views[0][0]
