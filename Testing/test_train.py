"""Training pieces: metrics, loss, patch sampling with phase dropout, a tiny end-to-end fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from BreastAIAssistantLib.train.data import BreastSample, TumourSample, lesion_voxels
from BreastAIAssistantLib.train.losses import DiceBCELoss
from BreastAIAssistantLib.train.metrics import dice, hausdorff95, sensitivity
from BreastAIAssistantLib.train.sampling import breast_batch, tumour_batch
from BreastAIAssistantLib.train.trainer import TrainSettings, train_breast_model


def cube(shape, lo, hi):
    mask = np.zeros(shape, bool)
    mask[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]] = True
    return mask


@pytest.mark.parametrize(
    ("pred", "truth", "expected"),
    [
        (cube((8, 8, 8), (0, 0, 0), (4, 4, 4)), cube((8, 8, 8), (0, 0, 0), (4, 4, 4)), 1.0),
        (cube((8, 8, 8), (0, 0, 0), (4, 4, 4)), cube((8, 8, 8), (0, 0, 0), (4, 4, 2)), 2 / 3),
        (np.zeros((4, 4, 4), bool), np.zeros((4, 4, 4), bool), 1.0),
        (cube((4, 4, 4), (0, 0, 0), (1, 1, 1)), np.zeros((4, 4, 4), bool), 0.0),
    ],
)
def test_dice(pred, truth, expected):
    assert dice(pred, truth) == pytest.approx(expected)


def test_sensitivity_and_hd95_in_mm():
    truth = cube((20, 20, 20), (5, 5, 5), (10, 10, 10))
    pred = cube((20, 20, 20), (5, 5, 7), (10, 10, 12))  # shifted 2 voxels along x
    assert sensitivity(pred, truth) == pytest.approx(3 / 5)
    # along x the spacing is 1.5 mm: surfaces are at most 2 voxels = 3 mm apart
    assert hausdorff95(pred, truth, (1.0, 1.0, 1.5)) == pytest.approx(3.0)
    assert np.isnan(hausdorff95(pred, np.zeros_like(pred), (1, 1, 1)))


def test_loss_is_low_for_confident_right_answers():
    target = torch.zeros(1, 1, 4, 4, 4)
    target[..., :2] = 1
    good = DiceBCELoss()(torch.where(target > 0, 10.0, -10.0), target)
    bad = DiceBCELoss()(torch.where(target > 0, -10.0, 10.0), target)
    assert good < 0.01 < 1.0 < bad
    with pytest.raises(ValueError, match="smooth must be > 0"):
        DiceBCELoss(smooth=0)


def test_lesion_term_weighs_a_small_lesion_like_a_large_one():
    target = torch.zeros(1, 1, 16, 32, 32)
    target[..., 2:14, 2:20, 2:20] = 1  # large lesion: 3,888 voxels
    target[..., 6:8, 26:28, 26:28] = 1  # small lesion: 8 voxels
    missed_small = torch.where(target > 0, 10.0, -10.0)
    missed_small[..., 6:8, 26:28, 26:28] = -10.0
    plain, balanced = DiceBCELoss(), DiceBCELoss(lesion_weight=1.0)
    assert plain(missed_small, target) < 0.01  # the batch Dice hardly notices the miss
    assert balanced.lesion_term(torch.sigmoid(missed_small), target) == pytest.approx(0.5, abs=0.06)
    assert balanced(torch.where(target > 0, 20.0, -20.0), target) < 0.01
    # a false positive blob lowers both lesions' Dice
    false_positive = torch.where(target > 0, 10.0, -10.0)
    false_positive[..., 10:12, 26:30, 26:30] = 10.0
    assert balanced.lesion_term(torch.sigmoid(false_positive), target) > 0.3
    # the gradient reaching the missed lesion's logits is far larger with the lesion term
    grads = []
    for loss_fn in (plain, balanced):
        logits = missed_small.clone()
        logits[..., 6:8, 26:28, 26:28] = -2.0  # probability 0.12: not detected, not saturated
        logits.requires_grad_(True)
        loss_fn(logits, target).backward()
        grads.append(float(logits.grad[..., 6:8, 26:28, 26:28].abs().sum()))
    assert grads[1] > 100 * grads[0]  # about 130x, as the README says
    assert balanced.lesion_term(torch.zeros(1, 1, 4, 4, 4), torch.zeros(1, 1, 4, 4, 4)) == 0
    with pytest.raises(ValueError, match="lesion_weight"):
        DiceBCELoss(lesion_weight=-1)


def tumour_sample(n_phases=6):
    rng = np.random.default_rng(0)
    phases = rng.random((n_phases, 20, 40, 40)).astype(np.float16)
    tumour = cube((20, 40, 40), (8, 18, 18), (12, 24, 24)).astype(np.uint8)
    breast = cube((20, 40, 40), (2, 5, 5), (18, 35, 35)).astype(np.uint8)
    return TumourSample("t", phases, np.arange(n_phases, dtype=np.float32) * 60, tumour, breast)


def test_tumour_batch_pads_phases_and_keeps_the_pre_contrast_phase():
    rng = np.random.default_rng(1)
    samples = [tumour_sample(6), tumour_sample(3)]
    for _ in range(10):
        x, times, present, target = tumour_batch(samples, (16, 16, 16), 3, rng)
        assert x.shape[0] == 3 and x.shape[2:] == (2, 16, 16, 16)
        assert bool(present[:, 0].all()) and bool((present[:, 1:].sum(1) >= 1).all())
        assert bool((x[~present] == 0).all())
        # channel 1 is phase minus pre-contrast for the present phases
        b = 0
        for t in np.flatnonzero(present[b].numpy()):
            torch.testing.assert_close(x[b, t, 1], x[b, t, 0] - x[b, 0, 0])
        assert target.shape == (3, 1, 16, 16, 16) and times.shape == present.shape


@pytest.mark.parametrize(("truncation", "contiguous"), [(1.0, True), (0.0, False)])
def test_phase_truncation_keeps_the_first_post_contrast_phases(truncation, contiguous):
    rng = np.random.default_rng(3)
    patterns = set()
    for _ in range(200):
        _, _, present, _ = tumour_batch([tumour_sample(6)], (8, 8, 8), 1, rng,
                                        phase_dropout=1.0, phase_truncation=truncation)  # fmt: skip
        kept = np.flatnonzero(present[0].numpy())
        patterns.add(tuple(kept))
        assert kept[0] == 0 and kept.size >= 2
    prefixes = {tuple(range(k + 1)) for k in range(1, 6)}
    if contiguous:  # only pre-contrast + the first k post phases, every k from 1 to 5
        assert patterns == prefixes
    else:  # random subsets: most patterns are not a prefix of the schedule
        assert len(patterns - prefixes) > 10


def test_enhancement_scale_weakens_every_post_contrast_phase_by_one_factor():
    sample = tumour_sample(4)
    phases = np.zeros_like(sample.phases)
    phases[0] = 1.0
    phases[1:] = 3.0  # enhancement 2.0 everywhere after contrast
    sample = TumourSample("s", phases, sample.times_s, sample.tumour, sample.breast)
    seen = []
    rng = np.random.default_rng(4)
    for _ in range(60):
        x, *_ = tumour_batch([sample], (8, 8, 8), 1, rng, phase_dropout=0.0,
                             enhancement_scale=(0.4, 0.8))  # fmt: skip
        inside = x[0, 0, 0] > 0  # not the zero padding beyond the volume
        pre, sub = x[0, 0, 0][inside], x[0, 1:, 1][:, inside]
        # the global intensity scale s in [0.9, 1.1] acts on both, so sub / pre = 2k
        ratio = sub / pre / 2.0
        torch.testing.assert_close(ratio, torch.full_like(ratio, float(ratio[0, 0])))
        seen.append(float(ratio[0, 0]))
    seen = np.array(seen)
    unscaled = np.isclose(seen, 1.0, atol=1e-3)
    assert 15 < unscaled.sum() < 45  # about half the patches are left alone
    assert ((seen[~unscaled] >= 0.4 - 1e-3) & (seen[~unscaled] <= 0.8 + 1e-3)).all()
    assert np.ptp(seen[~unscaled]) > 0.2  # k is drawn, not fixed


def test_foreground_patches_visit_small_lesions_as_often_as_large_ones():
    shape = (20, 60, 60)
    big = cube(shape, (2, 4, 4), (18, 30, 30))  # 16 x 26 x 26 voxels
    small = cube(shape, (9, 50, 50), (11, 52, 52))  # 2 x 2 x 2 voxels
    tumour = (big | small).astype(np.uint8)
    lesions = lesion_voxels(tumour)
    assert sorted(v.size for v in lesions) == [8, 16 * 26 * 26]
    phases = np.zeros((3, *shape), np.float16)
    phases[:, small] = 1.0  # marks the small lesion in the image
    sample = TumourSample(
        "t", phases, np.array([0.0, 60, 120]), tumour, np.ones(shape, np.uint8), lesions
    )
    rng = np.random.default_rng(2)
    on_small = 0
    for _ in range(200):
        x, *_ = tumour_batch([sample], (8, 8, 8), 1, rng, foreground_fraction=1.0)
        # jitter is at most a quarter patch, so a patch aimed at the small lesion holds it
        on_small += bool(x[0, 0, 0].max() > 0.5)
    assert 70 <= on_small <= 130  # about half; uniform over voxels would give ~0


def test_tiny_breast_model_learns_a_cube():
    image = np.zeros((16, 32, 32), np.float16)
    image[4:12, 8:24, 8:24] = 1.0
    sample = BreastSample("b", image, (image > 0).astype(np.uint8))
    args = {"widths": [4, 8], "residual": False}
    x, t = breast_batch([sample], (16, 32, 32), 2, np.random.default_rng(0))
    assert x.shape == t.shape == (2, 1, 16, 32, 32)
    model, result = train_breast_model(
        [sample], args, (16, 32, 32), TrainSettings(steps=60, learning_rate=1e-2, seed=0)
    )
    assert result.steps_done == 60 and result.losses[-1] < result.losses[0]
    with torch.no_grad():
        pred = torch.sigmoid(model(torch.from_numpy(image.astype(np.float32))[None, None])) > 0.5
    assert dice(pred[0, 0].numpy(), image > 0) > 0.9


def test_training_resumes_from_its_checkpoint(tmp_path):
    image = np.zeros((16, 32, 32), np.float16)
    image[4:12, 8:24, 8:24] = 1.0
    sample = BreastSample("b", image, (image > 0).astype(np.uint8))
    args = {"widths": [4, 8], "residual": False}
    checkpoint = tmp_path / "checkpoint.pt"
    settings = TrainSettings(steps=20, learning_rate=1e-2, seed=0, checkpoint_every=10)
    _, done = train_breast_model([sample], args, (16, 32, 32), settings, checkpoint)
    state = torch.load(checkpoint, weights_only=False)
    assert state["step"] == 20 and len(state["losses"]) == 20
    assert done.summary()["device"] == "cpu"
    settings.steps = 30
    calls = []
    second, resumed = train_breast_model([sample], args, (16, 32, 32), settings, checkpoint,
                                         progress=lambda stage, f: calls.append(f))  # fmt: skip
    # only ten new steps, from the saved weights and optimiser state
    assert len(calls) == 10 and calls[0] == pytest.approx(21 / 30)
    assert resumed.steps_done == 30 and len(resumed.losses) == 30
    assert resumed.losses[:20] == done.losses
    assert np.mean(resumed.losses[20:]) < np.mean(done.losses[:10])
    assert torch.load(checkpoint, weights_only=False)["step"] == 30
    assert all(p.device.type == "cpu" for p in second.parameters())


def test_t_agreement_matches_truth_lesions_to_predictions():
    import SimpleITK as sitk

    from BreastAIAssistantLib.phantom import make_simple_study
    from BreastAIAssistantLib.train.data import LabelledStudy, enhancing_lesions
    from BreastAIAssistantLib.train.evaluate import _t_agreement

    study = make_simple_study(seed=0)
    truth_array = np.zeros(study.size_xyz[::-1], np.uint16)
    truth_array[10:14, 40:50, 40:50] = 1  # 4 slices x 10 x 10 voxels at 2.5 x 2.5 x 4 mm
    truth_array[10:12, 10:13, 10:13] = 2  # a cyst: not a target
    truth_labels = study.image_like(truth_array)
    truth = {"lesions": [
        {"label": 1, "class": "malignant", "kind": "mass", "t_category": "T2",
         "max_diameter_mm": 33.0},
        {"label": 2, "class": "benign", "kind": "cyst", "t_category": "T1b"},
    ]}  # fmt: skip
    enhancing = enhancing_lesions(truth_labels, truth)
    assert set(np.unique(sitk.GetArrayViewFromImage(enhancing))) == {0, 1}
    case = LabelledStudy("c", study, enhancing, None, truth=truth)
    pred = truth_array.copy()
    pred[pred == 2] = 0
    result = _t_agreement(case, study.image_like(pred))
    # 3-D diameter between voxel centres: sqrt((9*2.5)^2 * 2 + (3*4)^2) = 34.0 mm -> T2
    assert result == [{"truth_label": 1, "class": "malignant", "truth_t": "T2",
                       "predicted_t": "T2", "detected": True, "t_agree": True,
                       "predicted_t_range": ["T2", "T2"], "t_within_range": True,
                       "truth_diameter_mm": 33.0,
                       "predicted_diameter_mm": pytest.approx(34.0, abs=0.05)}]  # fmt: skip
    missed = _t_agreement(case, study.image_like(np.zeros_like(pred)))
    assert missed[0]["detected"] is False and missed[0]["t_agree"] is False
    assert missed[0]["predicted_diameter_mm"] is None
    assert missed[0]["predicted_t_range"] is None and missed[0]["t_within_range"] is False


def test_tumour_case_score_counts_false_positive_lesions():
    from BreastAIAssistantLib.phantom import make_simple_study
    from BreastAIAssistantLib.train.data import LabelledStudy
    from BreastAIAssistantLib.train.evaluate import _score_tumour_case, tumour_summary

    study = make_simple_study(seed=0)
    shape = study.size_xyz[::-1]
    truth = np.zeros(shape, np.uint8)
    truth[4:10, 20:30, 10:20] = 1
    prob = np.zeros(shape, np.float32)
    prob[5:9, 22:28, 12:18] = 0.9  # finds the lesion
    prob[4:10, 40:48, 40:48] = 0.9  # and reports one that is not there
    case = LabelledStudy("c", study, study.image_like(truth), None)
    record = _score_tumour_case(case, study.image_like(prob), 0.5, None)
    assert record["predicted_lesions"] == 2 and record["false_positive_lesions"] == 1
    empty = LabelledStudy("e", study, study.image_like(np.zeros_like(truth)), None)
    clean = _score_tumour_case(empty, study.image_like(np.zeros_like(prob)), 0.5, None)
    noisy = _score_tumour_case(empty, study.image_like(prob), 0.5, None)
    assert clean["false_positive_lesions"] == 0 and noisy["false_positive_lesions"] == 2
    summary = tumour_summary([record, clean, noisy])
    assert summary["tumour_free_cases_with_a_lesion"] == 1
    assert summary["false_positive_lesions"] == 3


def test_breast_evaluation_scores_the_cleaned_mask_that_run_writes(monkeypatch):
    from BreastAIAssistantLib.phantom import make_simple_study
    from BreastAIAssistantLib.train import evaluate
    from BreastAIAssistantLib.train.data import LabelledStudy

    study = make_simple_study(seed=0)
    truth = np.zeros(study.size_xyz[::-1], np.uint8)
    truth[4:12, 10:40, 5:25] = 1  # two "breasts"
    truth[4:12, 10:40, 35:55] = 1
    prob = truth.astype(np.float32)
    prob[6:10, 20:30, 12:18] = 0.1  # a hole inside the left breast
    prob[1:3, 50:53, 28:31] = 0.9  # an island beside the heart

    class StandIn:
        def __init__(self, bundle, device="cpu"):
            pass

        def predict(self, _study):
            return study.image_like(prob), None

    monkeypatch.setattr(evaluate, "BreastPredictor", StandIn)
    case = LabelledStudy("c", study, None, study.image_like(truth))
    scores = evaluate.evaluate_breast(None, [case])
    # the raw 0.5 mask scores below 1: the hole and the island
    assert scores["per_case"][0]["dice"] == pytest.approx(1.0)


def test_tumour_summary_counts_detection_per_true_t_category():
    from BreastAIAssistantLib.train.evaluate import _within as evaluate_within
    from BreastAIAssistantLib.train.evaluate import tumour_summary

    def lesion(truth_t, detected, agree, diameters=(None, None), t_range=None):
        within = bool(t_range) and truth_t in t_range  # enough for these two-category ranges
        return {"truth_t": truth_t, "detected": detected, "t_agree": agree,
                "predicted_t_range": t_range, "t_within_range": within,
                "truth_diameter_mm": diameters[0], "predicted_diameter_mm": diameters[1]}

    per_case = [
        {"truth_voxels": 50, "n_phases": 2, "dice": 0.0, "sensitivity": 0.0, "hd95_mm": None,
         "lesions": [lesion("T1b", False, False, (7.0, None))]},
        {"truth_voxels": 9000, "n_phases": 5, "dice": 0.9, "sensitivity": 0.9, "hd95_mm": 1.0,
         "lesions": [lesion("T2", True, True, (30.0, 31.0), ["T2", "T2"]),
                     lesion("T1b", True, False, (9.0, 11.5), ["T1c", "T1c"]),
                     lesion("T1mi", True, True, (1.0, 0.0), ["T1mi", "T1a"])]},
    ]  # fmt: skip
    summary = tumour_summary(per_case)
    assert summary["by_truth_t_category"] == {
        "T1mi": {"lesions": 1, "detected": 1, "t_agree": 1},
        "T1b": {"lesions": 2, "detected": 1, "t_agree": 0},
        "T2": {"lesions": 1, "detected": 1, "t_agree": 1},
    }
    assert list(summary["by_truth_t_category"]) == ["T1mi", "T1b", "T2"]  # AJCC order
    assert summary["lesions_detected"] == 3 and summary["t_category_agreement"] == 0.5
    # errors +1, +2.5, -1 over the three detected lesions (the missed one has no prediction)
    assert summary["diameter_error_mm"] == {"lesions": 3, "median": 1.0, "mean_absolute": 1.5}
    # the wrong T1b was reported as a sure T1c; the right T1mi as uncertain (T1mi-T1a)
    assert summary["t_category_uncertainty"] == {
        "lesions": 4, "detected": 3, "wrong_detected": 1, "wrong_flagged": 0,
        "wrong_within_range": 0, "right_flagged": 1, "truth_within_range": 2}
    old_records = [{**c, "lesions": [{k: v for k, v in les.items() if k != "predicted_t_range"}
                                     for les in c["lesions"]]} for c in per_case]  # fmt: skip
    assert tumour_summary(old_records)["t_category_uncertainty"] is None
    # a 10.5 mm T1c measured 9.5 mm (T1b) and reported as "T1b, range T1b-T1c"
    near = {**per_case[1], "lesions": [lesion("T1c", True, False, (10.5, 9.5), ["T1b", "T1c"])]}
    assert tumour_summary([near])["t_category_uncertainty"] == {
        "lesions": 1, "detected": 1, "wrong_detected": 1, "wrong_flagged": 1,
        "wrong_within_range": 1, "right_flagged": 0, "truth_within_range": 1}
    assert evaluate_within("T1b", ["T1a", "T1c"]) and not evaluate_within("T2", ["T1a", "T1c"])
    assert not evaluate_within("T1b", None)
    assert tumour_summary([{**per_case[0], "lesions": [lesion("T1b", False, False)]}])[
        "diameter_error_mm"] is None


def test_training_data_from_the_mama_mia_layout(tmp_path):
    import SimpleITK as sitk

    from BreastAIAssistantLib.train.data import folder_cases, tumour_sample

    from conftest import enhancing_phases, make_image

    case_id = "DUKE_042"
    (tmp_path / "images" / case_id).mkdir(parents=True)
    (tmp_path / "segmentations" / "expert").mkdir(parents=True)
    shape = (6, 10, 12)
    for k, arr in enumerate(enhancing_phases(shape_zyx=shape, n_phases=3)):
        sitk.WriteImage(
            make_image(arr), str(tmp_path / "images" / case_id / f"{case_id}_{k:04d}.nii.gz")
        )
    mask = np.zeros(shape, np.uint8)
    mask[2, 3, 4] = 1
    sitk.WriteImage(
        make_image(mask), str(tmp_path / "segmentations" / "expert" / f"{case_id}.nii.gz")
    )
    (tmp_path / "images" / "NO_MASK").mkdir()
    cases = list(folder_cases(tmp_path))
    assert [c.case_id for c in cases] == [case_id]
    assert cases[0].study.n_phases == 3 and cases[0].breast is None
    sample = tumour_sample(cases[0], (1.0, 1.0, 2.0), {"scheme": "shared-first-post"})
    assert sample.phases.shape[0] == 3 and sample.tumour.any()
