"""evaluation.md: a plain-language summary, then tables, then figures, for a reader who knows
radiology research better than generative models. Everything is read from evaluation.json's
dict, so the two files always agree."""

from pathlib import Path

UTILITY_TARGET = 0.05  # the project's goal: TSTR macro AUC within 0.05 of TRTR


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _ci(estimate: dict, signed: bool = False) -> str:
    if estimate["value"] is None:
        return "n/a"
    form = "+.3f" if signed else ".3f"
    low, high = estimate["ci95"]
    return f"{estimate['value']:{form}} ({low:{form}} to {high:{form}})"


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _detector_reading(auc: float | None, reference: float | None) -> str:
    if auc is None:
        return "too few images to train the detector"
    margin = auc - (reference if reference is not None else 0.5)
    if margin <= 0.05:
        return "the detector tells them apart no better than it tells two real sets apart"
    if auc <= 0.8:
        return "the detector finds some difference from real images"
    if auc <= 0.95:
        return "the detector tells most synthetic images from real ones"
    return "the detector tells synthetic from real images almost every time"


def _realism_reading(precision: float | None) -> str:
    if precision is None:
        return "too few images to judge realism"
    if precision >= 0.8:
        return "most synthetic images look like real ones to this network"
    if precision >= 0.5:
        return "many synthetic images look like real ones to this network, some do not"
    return (
        "most synthetic images lie outside the neighbourhoods of real images (they look unlike "
        "real images to this network)"
    )


def _diversity_reading(coverage: float | None) -> str:
    # Coverage rather than recall: recall is inflated by synthetic outliers (Naeem et al.).
    if coverage is None:
        return "too few images to judge diversity"
    if coverage >= 0.8:
        return "they cover the variety of real images well (no sign of mode collapse)"
    if coverage >= 0.5:
        return "part of the variety of real images has no synthetic look-alike"
    return (
        "most real images have no synthetic look-alike: mode collapse, or synthetic images "
        "too unrealistic to come near any real one (see precision)"
    )


def _range_reading(model: dict) -> str:
    defined = {name: v["value"] for name, v in model["auc"].items() if v["value"] is not None}
    if len(defined) < 2:
        return ""
    low, high = min(defined, key=defined.get), max(defined, key=defined.get)
    if defined[high] - defined[low] < 0.0005:  # e.g. two classes, one-vs-rest: the same AUC
        return ""
    return (
        f" Per class, TSTR AUC ranges from {defined[low]:.3f} ({low}) to {defined[high]:.3f} "
        f"({high})."
    )


def _privacy(result: dict) -> str:
    spent = result["epsilon_per_site"]
    if not spent:
        return "privacy spent: unknown (no summary.json)"
    if all(e is None for e in spent.values()):
        return "non-private run (epsilon infinite)"
    return "epsilon per site " + ", ".join(f"{s} {_num(e, 2)}" for s, e in spent.items())


def _summary(result: dict) -> list[str]:
    classification = result["classification"]
    models = classification["models"]
    gaps = classification["macro_auc_minus_TRTR"]
    gap = gaps["TSTR"]
    images = result["images"]
    fidelity = result["label_fidelity"]
    overall = result["distribution"]["overall"]
    reference = result["distribution"]["real_reference"]
    within = gap["value"] is not None and gap["value"] >= -UTILITY_TARGET
    arch = result["settings"]["classifier"]
    return [
        "## Summary",
        "",
        f"- **Utility.** A {arch} trained only on synthetic images (TSTR) reaches macro AUC "
        f"{_ci(models['TSTR']['macro_auc'])} on {images['real_holdout']} real held-out images "
        f"the generator never saw; the same classifier trained on real images (TRTR) reaches "
        f"{_ci(models['TRTR']['macro_auc'])}. Difference TSTR − TRTR: {_ci(gap, signed=True)}, "
        + (
            f"within the project's target of {UTILITY_TARGET}."
            if within
            else f"short of the project's target (within {UTILITY_TARGET})."
        )
        + _range_reading(models["TSTR"]),
        f"- **Augmentation.** Training on real plus synthetic images changes macro AUC by "
        f"{_ci(gaps['TRTR + synthetic'], signed=True)} against real images alone.",
        f"- **Label fidelity.** The real-trained classifier assigns "
        f"{_percent(fidelity['synthetic']['overall'])} of the synthetic images to the class they "
        f"were generated for (on real held-out images: "
        f"{_percent(fidelity['real_holdout']['overall'])}).",
        f"- **Realism and diversity.** Precision {_num(overall['precision'], 2)}: "
        f"{_realism_reading(overall['precision'])}. Coverage {_num(overall['coverage'], 2)} "
        f"(recall {_num(overall['recall'], 2)}): {_diversity_reading(overall['coverage'])}. "
        f"Fréchet distance {_num(overall['frechet_distance'], 1)} (lower is closer; in the "
        "project's own feature space, not Inception-FID). For reference, two sets of real "
        f"images score precision {_num(reference['precision'], 2)}, coverage "
        f"{_num(reference['coverage'], 2)} and Fréchet distance "
        f"{_num(reference['frechet_distance'], 1)}.",
        _detector_line(result.get("realism")),
        "",
    ]


def _detector_line(realism: dict | None) -> str:
    if not realism:
        return "- **Realism detector.** not measured (an evaluation from before the detector)."
    synthetic, reference = realism["synthetic"], realism["real_reference"]
    return (
        f"- **Realism detector.** A CNN trained to tell real held-out images from synthetic "
        f"ones scores AUC {_interval(synthetic)} on images it did not train on (0.5: "
        f"indistinguishable); the same detector scores two real sets at "
        f"{_interval(reference)}: {_detector_reading(synthetic['auc'], reference['auc'])}."
    )


def _interval(detector: dict) -> str:
    if detector["auc"] is None:
        return "n/a"
    low, high = detector["auc_ci95"]
    return f"{detector['auc']:.3f} ({low:.3f} to {high:.3f})"


def _realism(result: dict) -> list[str]:
    realism = result.get("realism")
    if not realism:
        return []
    synthetic, reference = realism["synthetic"], realism["real_reference"]
    lines = [
        "## Realism: a detector of synthetic against real images",
        "",
        "A classifier two-sample test: a small CNN trained on real training images against "
        "synthetic ones (label-matched), scored on the real holdout against synthetic images "
        "it did not train on. AUC 0.5 means it cannot tell the sets apart; the real vs real "
        "row is the same detector with real training images in the synthetic images' role.",
        "",
        "| group | synthetic vs real AUC | real vs real AUC |",
        "|---|---|---|",
        f"| all | {_interval(synthetic)} | {_interval(reference)} |",
    ]
    for name, auc in synthetic["per_class"].items():
        other = reference["per_class"].get(name)
        lines.append(f"| {name} | {_num(auc)} | {_num(other)} |")
    lines += [
        "",
        "The held-out synthetic images the detector finds most real (top row) and least real "
        "(middle row), beside random real images (bottom row):",
        "",
        f"![Most and least real synthetic images]({result['figures']['realism']})",
        "",
    ]
    return lines


def _utility(result: dict) -> list[str]:
    names = result["class_names"]
    models = result["classification"]["models"]
    gaps = result["classification"]["macro_auc_minus_TRTR"]
    images, settings = result["images"], result["settings"]
    auc_kind = "per finding" if result["multi_label"] else "per class, one-vs-rest"
    accuracy_kind = "exact match of all findings" if result["multi_label"] else "top class"
    lines = [
        "## Utility: train on synthetic, test on real (TSTR) vs train on real (TRTR)",
        "",
        f"Test set: the run's real holdout, {images['real_holdout']} images, patient-disjoint "
        "from training and never seen by the generator. TRTR trains on "
        f"{images['real_training_used']} of the {images['real_training_available']} real "
        "training images"
        + (
            " (a random subsample, for speed)"
            if images["real_training_used"] < images["real_training_available"]
            else ""
        )
        + f"; TSTR on {images['synthetic']} synthetic images ({result['synthetic_source']}). "
        f"Every classifier is the same {settings['classifier']}, trained from scratch for the "
        f"same {settings['training_steps']} steps (batch {settings['batch_size']}); the last "
        "weights are used, nothing is selected on the test set. AUC is "
        f"{auc_kind}; accuracy is {accuracy_kind}. Values are 95% bootstrap intervals over "
        f"{settings['bootstrap_resamples']} resamples of the test set. Accuracy also depends "
        "on how the training set's classes are balanced (synthetic sets have the same number "
        "per class, real ones rarely do); AUC does not.",
        "",
        "| trained on | " + " | ".join(f"AUC {n}" for n in names) + " | macro AUC | accuracy "
        "| macro AUC − TRTR |",
        "|---" * (len(names) + 4) + "|",
    ]
    for model, values in models.items():
        row = [model, *(_ci(values["auc"][n]) for n in names)]
        row += [_ci(values["macro_auc"]), _ci(values["accuracy"])]
        row.append(_ci(gaps[model], signed=True) if model in gaps else "")
        lines.append("| " + " | ".join(row) + " |")
    repeats = result.get("tstr_repeats")
    if repeats:
        draws = ", ".join(f"{auc:.3f}" for auc in repeats["macro_auc"])
        lines += [
            "",
            f"Over {len(repeats['seeds'])} draws (a new synthetic set and classifier seed each, "
            f"seeds {repeats['seeds'][0]}-{repeats['seeds'][-1]}), TSTR macro AUC is "
            f"{repeats['mean']:.3f} ± {repeats['sd']:.3f} (sd; {draws}). This spread is the "
            "noise of one evaluation, which the bootstrap intervals above do not include.",
        ]
    lines += ["", f"![ROC curves, TSTR vs TRTR]({result['figures']['roc']})", ""]
    curve = result["samples_per_class_curve"]
    if len(curve) > 1:
        lines += [
            "### Synthetic images per class",
            "",
            "TSTR macro AUC when the classifier trains on the first N synthetic images of every "
            "class (same steps for every N).",
            "",
            "| synthetic images per class | TSTR macro AUC |",
            "|---|---|",
            *(f"| {p['samples_per_class']} | {_ci(p['macro_auc'])} |" for p in curve),
            "",
            f"![TSTR AUC against images per class]({result['figures']['samples_per_class']})",
            "",
        ]
    return lines


def _fidelity(result: dict) -> list[str]:
    fidelity = result["label_fidelity"]
    lines = [
        "## Label fidelity",
        "",
        "Share of images the TRTR classifier assigns to their class"
        + (
            " (multi-label: the findings it scores >= 0.5 are exactly the generated ones)"
            if result["multi_label"]
            else ""
        )
        + ". The real column is the same classifier on real held-out images of that class: "
        "the most a perfect generator could score.",
        "",
        "| class | synthetic | real holdout |",
        "|---|---|---|",
    ]
    for name, value in fidelity["synthetic"]["per_class"].items():
        real = fidelity["real_holdout"]["per_class"].get(name)
        lines.append(f"| {name} | {_percent(value)} | {_percent(real)} |")
    lines.append(
        f"| all | {_percent(fidelity['synthetic']['overall'])} | "
        f"{_percent(fidelity['real_holdout']['overall'])} |"
    )
    return [*lines, ""]


def _distribution(result: dict) -> list[str]:
    distribution = result["distribution"]
    lines = [
        "## Distribution metrics",
        "",
        f"Feature space: {distribution['feature_space']}. Precision, recall, density and "
        "coverage follow Naeem et al. (2020) with k = 5 nearest neighbours: precision and "
        "density measure realism (density about 1 for a set like the real one), recall and "
        "coverage measure diversity (low values mean mode collapse). Per class compares "
        "images whose label is exactly that class. The last row compares real training "
        "images with the real holdout: what a generator indistinguishable from real data "
        "would score.",
        "",
        "| compared | Fréchet distance | precision | recall | density | coverage | real | "
        "synthetic |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [
        ("all", distribution["overall"]),
        *distribution["per_class"].items(),
        ("real training vs real holdout", distribution["real_reference"]),
    ]
    for name, values in rows:
        lines.append(
            f"| {name} | {_num(values['frechet_distance'], 2)} | {_num(values['precision'], 2)} "
            f"| {_num(values['recall'], 2)} | {_num(values['density'], 2)} | "
            f"{_num(values['coverage'], 2)} | {values['real_images']} | "
            f"{values['synthetic_images']} |"
        )
    lines += ["", f"![PRDC per class]({result['figures']['prdc']})", ""]
    return lines


def report_markdown(result: dict) -> str:
    """evaluation.md's text for one evaluation.json dict."""
    header = [
        f"# Evaluation of {Path(result['run_dir']).name}",
        "",
        f"Dataset {result['dataset']} ({result['data_source']}), classes: "
        f"{', '.join(result['class_names'])}"
        + (" (multi-label findings)" if result["multi_label"] else "")
        + f"; {_privacy(result)}.",
        "",
    ]
    samples = [
        "## Samples",
        "",
        "Synthetic images (left) next to real held-out images (right), one row per class.",
        "",
        f"![Synthetic and real samples]({result['figures']['samples']})",
        "",
        f"Evaluation took {result['wall_time_s']:.0f} s; all numbers are in evaluation.json.",
        "",
    ]
    text = [
        *header,
        *_summary(result),
        *_utility(result),
        *_fidelity(result),
        *_distribution(result),
        *_realism(result),
        *samples,
    ]
    return "\n".join(text)
