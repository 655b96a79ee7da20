"""The server's side of the mean_embedding method: pooling releases and fitting the generator."""

import json

import numpy as np
import torch

from common.config import config_from_dict
from common.device import resolve_device
from common.mean_embedding import features_for
from common.models import build_generator
from common.run_folder import RunFolder, site_name
from server.federation import run_federation
from server.mean_embedding import class_means, fit_generator
from tests.helpers.configs import TINY, tiny_config
from tests.helpers.federation import in_process_exchange

METHOD = ["training.method=mean_embedding", "mean_embedding.frequencies=32"]
# A wide kernel (the start is far from both targets) and enough frequencies that matching
# the embedding means matching the images.
MATCHABLE = [
    *TINY,
    *METHOD,
    "mean_embedding.frequencies=1000",
    "mean_embedding.batch_per_class=16",
    "mean_embedding.bandwidth=1",
]


def bright_and_dark_release(config) -> dict[str, torch.Tensor]:
    """Group 0: 8 near-white squares, group 1: 8 near-black ones, noiseless."""
    phi = features_for(config)
    bright, dark = torch.ones(8, 1, 28, 28) * 0.8, -torch.ones(8, 1, 28, 28) * 0.8
    return {
        "feature_sums": torch.stack([phi(bright).sum(0), phi(dark).sum(0)]),
        "counts": torch.tensor([8.0, 8.0]),
    }


def test_class_means_pool_the_sites_sums_and_counts():
    releases = [
        {
            "feature_sums": torch.tensor([[2.0, 0.0], [0.0, 3.0]]),
            "counts": torch.tensor([2.0, 1.0]),
        },
        {
            "feature_sums": torch.tensor([[2.0, 2.0], [0.0, 3.0]]),
            "counts": torch.tensor([2.0, 2.0]),
        },
    ]

    means, counts = class_means(releases)

    assert torch.allclose(means, torch.tensor([[1.0, 0.5], [0.0, 2.0]]))
    assert torch.equal(counts, torch.tensor([4.0, 3.0]))


def test_fitting_moves_the_generators_class_means_towards_the_release():
    config = config_from_dict({}, MATCHABLE)
    torch.manual_seed(0)
    start = build_generator(2, 28, config.model).state_dict()
    release = bright_and_dark_release(config)

    def fitted_loss(steps):
        cfg = config_from_dict({}, [*MATCHABLE, f"mean_embedding.generator_steps={steps}"])
        return fit_generator(cfg, 2, False, start, [release], show_progress=False)

    _, early = fitted_loss(1)
    state, late = fitted_loss(150)

    assert late < early / 4
    generator = build_generator(2, 28, config.model)
    generator.load_state_dict(state)
    with torch.no_grad():
        images = generator(torch.randn(20, 8), torch.eye(2).repeat_interleave(10, dim=0))
    assert images[:10].mean() > 0.6 and images[10:].mean() < -0.6  # 0 bright, 1 dark


def test_a_fit_told_to_use_the_cpu_is_the_default_fit_on_a_machine_without_a_gpu():
    config = config_from_dict({}, [*MATCHABLE, "mean_embedding.generator_steps=5"])
    torch.manual_seed(0)
    start = build_generator(2, 28, config.model).state_dict()
    release = bright_and_dark_release(config)

    default, default_loss = fit_generator(config, 2, False, start, [release], show_progress=False)
    on_cpu, cpu_loss = fit_generator(
        config, 2, False, start, [release], show_progress=False, device=resolve_device("cpu")
    )

    assert cpu_loss == default_loss
    assert all(torch.equal(on_cpu[key], default[key]) for key in default)
    assert all(value.device == torch.device("cpu") for value in on_cpu.values())


def test_a_mean_embedding_run_is_one_release_per_site_then_the_server_fit(tmp_path):
    config = tiny_config(*METHOD, "mean_embedding.generator_steps=5")

    folder = RunFolder(tmp_path)

    summary = run_federation(config, tmp_path, False, in_process_exchange(config, tmp_path))

    assert summary["rounds"] == 1
    assert "mean embeddings" in summary["stop_reason"]
    stats = folder.read_stats()
    assert len(stats) == 1 and np.isfinite(stats[0]["server"]["fit_loss"])
    for site in (0, 1):
        ledger = json.loads(folder.site(site).ledger.read_text())
        assert [(e["sample_rate"], e["steps"]) for e in ledger["entries"]] == [(1.0, 1)]
        assert 0 < summary["epsilon_per_site"][site_name(site)] <= config.privacy.target_epsilon
    assert folder.generator_file.exists() and folder.training_plot.exists()


def test_a_release_round_no_site_answers_stops_with_the_reasons(tmp_path):
    config = tiny_config(*METHOD, "mean_embedding.generator_steps=5")
    all_down = in_process_exchange(config, tmp_path, down=lambda site, round_number: True)

    summary = run_federation(config, tmp_path, False, all_down)

    assert "only 0 site(s) replied" in summary["stop_reason"]
    assert "site crashed" in summary["stop_reason"]


def test_multi_label_fit_also_matches_the_no_finding_group():
    # One finding: images with it are bright, images without it dark. Without the
    # "no finding" group nothing would say what the empty condition looks like.
    settings = [*MATCHABLE, "mean_embedding.generator_steps=150", "model.multilabel_prior=0.5"]
    config = config_from_dict({}, settings)
    torch.manual_seed(0)
    start = build_generator(1, 28, config.model).state_dict()
    release = bright_and_dark_release(config)  # group 0: the finding, group 1: no finding

    state, _ = fit_generator(config, 1, True, start, [release], show_progress=False)

    generator = build_generator(1, 28, config.model)
    generator.load_state_dict(state)
    with torch.no_grad():
        images = generator(torch.randn(20, 8), torch.tensor([[1.0]] * 10 + [[0.0]] * 10))
    assert images[:10].mean() > 0.6 and images[10:].mean() < -0.6


def test_each_component_of_a_mixture_is_fitted_from_its_own_start():
    config = config_from_dict(
        {}, [*MATCHABLE, "mean_embedding.generator_steps=150", "model.generator_components=2"]
    )
    torch.manual_seed(0)
    start = build_generator(2, 28, config.model).state_dict()
    release = bright_and_dark_release(config)

    state, _ = fit_generator(config, 2, False, start, [release], show_progress=False)

    mixture = build_generator(2, 28, config.model)
    mixture.load_state_dict(state)
    z, condition = torch.randn(20, 8), torch.eye(2).repeat_interleave(10, dim=0)
    with torch.no_grad():
        for component in mixture.components:
            images = component(z, condition)
            assert images[:10].mean() > 0.6 and images[10:].mean() < -0.6
        first, second = (component(z, condition) for component in mixture.components)
    assert not torch.allclose(first, second, atol=1e-3)


def test_a_fit_with_a_weight_average_returns_the_average_of_its_steps_weights():
    config = config_from_dict({}, MATCHABLE)
    torch.manual_seed(0)
    start = build_generator(2, 28, config.model).state_dict()
    release = bright_and_dark_release(config)

    def fitted(*settings):
        cfg = config_from_dict({}, [*MATCHABLE, *settings])
        return fit_generator(cfg, 2, False, start, [release], show_progress=False)[0]

    one_step = fitted("mean_embedding.generator_steps=1")
    two_steps = fitted("mean_embedding.generator_steps=2")
    averaged = fitted("mean_embedding.generator_steps=2", "mean_embedding.generator_ema=0.5")

    generator = build_generator(2, 28, config.model)
    for name, _ in generator.named_parameters():
        # decay 0.5 per step: 1/4 of the start, 1/4 of step 1, 1/2 of step 2
        expected = 0.25 * start[name] + 0.25 * one_step[name] + 0.5 * two_steps[name]
        assert torch.allclose(averaged[name], expected, atol=1e-6), name
    assert not torch.allclose(averaged["project.weight"], two_steps["project.weight"])


def test_a_fit_of_the_input_layers_keeps_the_upsampling_layers_and_still_matches():
    torch.manual_seed(0)
    start = build_generator(2, 28, config_from_dict({}, MATCHABLE).model).state_dict()
    release = bright_and_dark_release(config_from_dict({}, MATCHABLE))

    def fitted(layers, steps):
        cfg = config_from_dict(
            {},
            [
                *MATCHABLE,
                "model.prior=public",
                f"mean_embedding.generator_layers={layers}",
                f"mean_embedding.generator_steps={steps}",
            ],
        )
        return fit_generator(cfg, 2, False, start, [release], show_progress=False)

    (one_step, start_loss), (inputs_only, loss) = fitted("all", 1), fitted("input", 150)

    moved = {key for key in start if not torch.equal(inputs_only[key], start[key])}
    assert moved == {"embed.weight", "project.weight", "project.bias"}
    assert all(not torch.equal(one_step[key], start[key]) for key in start if "body" in key)
    assert loss < 0.75 * start_loss  # the loss is that of the last step's batch
