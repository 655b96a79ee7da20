import pytest

from common.config import METHODS as CONFIG_METHODS
from common.config import config_from_dict
from common.errors import UserError
from methods import METHODS, method_for


def test_every_method_the_config_accepts_is_registered():
    assert METHODS.names() == sorted(CONFIG_METHODS)


def test_an_unknown_method_lists_the_valid_choices():
    with pytest.raises(UserError, match="valid choices: dpgan, mean_embedding"):
        METHODS.get("gan")


@pytest.mark.parametrize(
    "method, rounds, local_steps", [("dpgan", 4, 25), ("mean_embedding", 1, 1)]
)
def test_the_schedule_is_the_methods(method, rounds, local_steps):
    config = config_from_dict(
        {"training": {"method": method}, "federation": {"rounds": 4, "local_steps": 25}}
    )

    schedule = method_for(config).schedule(config)

    assert (schedule.rounds, schedule.local_steps) == (rounds, local_steps)


def test_a_release_request_carries_no_weights(tmp_path):
    from server.federation import FederationServer

    config = config_from_dict({"training": {"method": "mean_embedding"}})

    request = FederationServer(config, tmp_path).next_request()

    assert request.generator == {} and request.discriminator is None
