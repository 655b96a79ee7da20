import numpy as np

from attacks.copy_detection import attack, tiled_distance


def test_copies_of_the_training_images_are_all_flagged_and_every_image_is_copied(planted):
    context = planted("copies")

    result = attack(context)

    findings = result.findings
    assert result.leaked
    assert findings["embedding"]["copy_rate"] == 1.0
    assert findings["tiled_l2"]["copy_rate"] == 1.0
    assert findings["training_images_copied_share"] == 1.0
    assert findings["dcr_p5"]["synthetic"] == 0.0 < findings["dcr_p5"]["holdout"]
    assert findings["authenticity"]["synthetic"] == 0.0
    assert (context.run.run_dir / result.figures[0]).exists()


def test_independent_draws_are_not_copies(planted):
    context = planted("independent")

    result = attack(context)

    findings = result.findings
    assert not result.leaked
    assert findings["embedding"]["copy_rate"] < 0.05
    assert findings["tiled_l2"]["copy_rate"] < 0.05
    assert findings["authenticity"]["synthetic"] > 0.5
    # ... and it would have found near-copies had there been any: its silence counts.
    assert result.power["adequate"] and result.power["value"] >= 0.9


def test_tiled_distance_finds_a_partial_copy_that_whole_image_distance_misses():
    rng = np.random.default_rng(0)
    training = rng.integers(0, 256, (20, 32, 32), dtype=np.uint8)
    partial = rng.integers(0, 256, (1, 32, 32), dtype=np.uint8)
    partial[0, :16, :16] = training[7, :16, :16]  # a quarter of training image 7

    distance, index = tiled_distance(partial, training)

    assert index[0] == 7
    assert distance[0] == 0.0
