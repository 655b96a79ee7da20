import numpy as np
from sklearn.metrics import roc_auc_score

from attacks.embedding import embed
from attacks.linkage import (
    attack,
    pair_similarities,
    retrieval_p_value,
    split_patients,
    train_linkage,
)
from common.data.phantom import PhantomOptions, generate_phantom


def test_the_linkage_network_tells_same_from_different_phantom_patients():
    data = generate_phantom(PhantomOptions(num_patients=80, seed=3), 32)
    train, verify = split_patients(data, seed=0)

    encoder = train_linkage(train, steps=80, seed=0)

    same, different = pair_similarities(embed(encoder, verify.images), verify.patient_keys())
    truth = np.r_[np.ones(len(same)), np.zeros(len(different))]
    assert roc_auc_score(truth, np.r_[same, different]) > 0.85
    assert not set(train.patient_keys()) & set(verify.patient_keys())


def test_copied_training_images_link_back_to_their_patients(planted):
    result = attack(planted("copies"))

    findings = result.findings
    assert result.leaked
    assert findings["synthetic_matched_share"] == 1.0
    assert findings["training_patients_hit_share"] == 1.0
    assert findings["precision_at_1"] > findings["precision_at_1_chance"] + 0.15
    assert findings["precision_at_1_p_value"] < 0.01


def test_independent_patients_do_not_link_to_training_patients(planted):
    result = attack(planted("independent"))

    findings = result.findings
    assert not result.leaked
    assert abs(findings["precision_at_1"] - findings["precision_at_1_chance"]) < 0.2


def test_queries_that_all_retrieve_one_hub_image_are_not_significant():
    top = np.zeros(1000, dtype=np.int64)  # every query's best match: gallery image 0
    spread = np.arange(1000) % 20  # queries spread over all 20 training-side images

    hub = retrieval_p_value(top, member_count=20, gallery_size=40, rng=np.random.default_rng(0))
    real = retrieval_p_value(spread, 20, 40, np.random.default_rng(0))

    assert hub > 0.3
    assert real < 0.01
