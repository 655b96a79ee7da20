"""How many sites train at once, and what Flower's simulation stream shows the user."""

import pytest

from common.errors import UserError
from server.simulation import concurrent_sites, federation_config
from server.simulation_runtime import StreamFilter, config_arg
from tests.helpers.configs import tiny_config


@pytest.mark.parametrize(
    ("overrides", "cores", "expected"),
    [
        (["federation.num_sites=30"], 2, 2),  # one site per core; the others wait
        (["federation.num_sites=100"], 16, 16),
        (["federation.num_sites=3"], 16, 3),  # never more actors than sites
        (["federation.num_sites=30", "runtime.threads_per_site=2"], 8, 4),
        (["federation.num_sites=30", "runtime.cpus_per_site=0.5"], 2, 4),
        (["federation.num_sites=30", "runtime.threads_per_site=4"], 2, 1),
    ],
)
def test_sites_training_at_once_follow_cores_not_sites(overrides, cores, expected):
    config = tiny_config("runtime.device=cpu", *overrides)

    actors = concurrent_sites(config, cores=cores, gpus=0)

    assert actors == expected


def test_the_federation_config_gives_each_actor_one_of_as_many_cpus_as_actors():
    config = tiny_config("runtime.device=cpu", "federation.num_sites=30")

    settings = federation_config(config, cores=2, gpus=0)

    assert settings["num-supernodes"] == 30
    assert settings["client-resources-num-cpus"] == 1
    assert settings["init-args-num-cpus"] == 2
    assert settings["client-resources-num-gpus"] == 0.0


def test_cuda_without_a_gpu_is_a_user_error_before_anything_starts():
    config = tiny_config("runtime.device=cuda")

    with pytest.raises(UserError, match="runtime.device=cuda"):
        federation_config(config, cores=2, gpus=0)


def test_config_arg_quotes_strings_as_toml():
    text = config_arg({"config": '/a "b"/c.yaml', "resume": False, "num-supernodes": 3})

    assert text == 'config="/a \\"b\\"/c.yaml" resume=false num-supernodes=3'


def test_the_stream_filter_keeps_progress_bars_and_drops_flowers_log_lines():
    stream = StreamFilter()
    text = (
        "\x1b[92mINFO \x1b[0m:      Starting Flower Simulation\n"
        "Successfully installed privsynth to /tmp/x.\n"
        "federation:   0%|          | 0/2 [00:00<?, ?round/s]"
        "12/05/2026 15:17:26:DEBUG:Initialising: RayBackend\n"
        "\x1b[36m(ClientAppActor pid=16846)\x1b[0m \n"
        "\rfederation:  50%|#####     | 1/2 [00:10<00:10, 10.27s/round]"
        "\rround 2: node 7: the site refused\n"
    )

    shown = stream.feed(text[:100]) + stream.feed(text[100:]) + stream.feed("\r")

    assert shown == (
        "federation:   0%|          | 0/2 [00:00<?, ?round/s]\n"
        "\rfederation:  50%|#####     | 1/2 [00:10<00:10, 10.27s/round]"
        "\rround 2: node 7: the site refused\n\r"
    )


def test_the_stream_filter_holds_an_unfinished_piece_until_it_ends():
    stream = StreamFilter()

    first = stream.feed("\x1b[92mINFO \x1b[0m:   Start")
    second = stream.feed("ing\n")

    assert (first, second) == ("", "")
