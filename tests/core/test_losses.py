"""The papers' losses against hand-computed values and their defining properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from core.losses import (
    CenterLoss,
    CompoundLoss,
    DistributionAwareSmoothing,
    LossConfig,
    build_loss,
    class_weights,
    list_losses,
    ramp_factor,
)

COUNTS = [3969, 435, 4078, 7186, 4797, 3161, 4932]  # FER2013 Training counts (datasets README)


def test_ce_matches_hand_computed_value():
    loss = build_loss(LossConfig("ce"), 3, 4)
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    expected = -math.log(math.exp(2) / (math.exp(2) + 2))
    assert loss(logits, torch.tensor([0])).item() == pytest.approx(expected, rel=1e-6)


def test_class_weights_are_n_over_c_n_i():
    w = class_weights([10, 30, 60])
    assert torch.allclose(w, torch.tensor([100 / 30, 100 / 90, 100 / 180]))
    assert class_weights([5, 0, 5])[1] == 0  # an empty class gets no weight, not infinity


def test_weighted_ce_equals_weighted_mean_by_hand():
    loss = build_loss(LossConfig("weighted_ce"), 3, 4, class_counts=[10, 30, 60])
    logits = torch.tensor([[1.0, 0.0, -1.0], [0.0, 2.0, 0.0]])
    y = torch.tensor([0, 2])
    w = class_weights([10, 30, 60])
    nll = -F.log_softmax(logits, 1)[torch.arange(2), y]
    expected = (w[y] * nll).sum() / w[y].sum()
    assert loss(logits, y).item() == pytest.approx(expected.item(), rel=1e-6)


def test_dls_targets_sum_to_one_and_favour_rare_classes():
    dls = DistributionAwareSmoothing(COUNTS, smoothing=0.1)
    q = dls.smoothed_targets(torch.tensor([3, 3]))
    assert torch.allclose(q.sum(1), torch.ones(2))
    off_target = q[0].clone()
    off_target[3] = -1.0
    assert int(off_target.argmax()) == 1  # disgust (435 training rows) receives the most smoothing mass
    assert q[0, 1] > q[0, 0] > 0
    assert math.isclose(float(q[0, 1] / q[0, 2]), 4078 / 435, rel_tol=1e-5)


def test_dls_with_uniform_counts_is_ordinary_label_smoothing():
    dls = DistributionAwareSmoothing([5, 5, 5, 5], smoothing=0.2)
    logits = torch.randn(6, 4)
    y = torch.randint(0, 4, (6,))
    assert dls(logits, y).item() == pytest.approx(F.cross_entropy(logits, y, label_smoothing=0.2).item(), rel=1e-5)


def center_loss_numpy(emb: np.ndarray, centers: np.ndarray, y: np.ndarray) -> float:
    """Wen et al.'s 1/2 ||x - c_y||^2, averaged over dimensions and samples, in float64."""
    diff = emb.astype(np.float64) - centers.astype(np.float64)[y]
    return 0.5 * float(np.mean(np.mean(diff**2, axis=1)))


def test_compound_is_the_weighted_sum_of_its_parts():
    cfg = LossConfig("compound")
    loss = build_loss(cfg, 7, 5, class_counts=COUNTS).eval()
    logits, emb = torch.randn(8, 7), torch.randn(8, 5)
    y = torch.randint(0, 7, (8,))
    loss.center.centers.normal_()
    total = loss(logits, y, emb)
    ce = F.cross_entropy(logits, y)
    center = center_loss_numpy(emb.numpy(), loss.center.centers.numpy(), y.numpy())
    dls = loss.dls(logits, y)
    assert total.item() == pytest.approx((0.60 * ce + 0.25 * center + 0.15 * dls).item(), rel=1e-5)
    assert set(loss.last_terms) == {"ce", "center", "dls", "center_ramp"}


def test_center_loss_value_is_the_per_dimension_mean_by_numpy():
    rng = np.random.default_rng(3)
    emb, centers = rng.normal(size=(10, 256)), rng.normal(size=(7, 256))
    y = rng.integers(0, 7, 10)
    center = CenterLoss(7, 256).eval()
    center.centers.copy_(torch.from_numpy(centers))
    value = center(torch.from_numpy(emb).float(), torch.from_numpy(y)).item()
    assert value == pytest.approx(center_loss_numpy(emb, centers, y), rel=1e-5)
    # the same lambda at 2048-d: a per-dimension mean does not grow with the width (a sum would grow 8x)
    wide = CenterLoss(7, 2048).eval()
    e8 = torch.from_numpy(np.tile(emb, 8)).float()
    wide.centers.copy_(torch.from_numpy(np.tile(centers, 8)))
    assert wide(e8, torch.from_numpy(y)).item() == pytest.approx(value, rel=1e-5)


def test_centers_start_at_the_class_means_of_the_first_batch_holding_the_class():
    rng = np.random.default_rng(0)
    emb = np.abs(rng.normal(size=(9, 4))) + 1.0  # post-ReLU-like: far from zero
    y = np.array([0, 0, 2, 2, 2, 4, 4, 0, 2])
    center = CenterLoss(6, 4, alpha=0.5).train()
    value = center(torch.from_numpy(emb).float(), torch.from_numpy(y)).item()
    means = np.stack([emb[y == k].mean(0) if (y == k).any() else np.zeros(4) for k in range(6)])
    # Eq. 4 leaves a center at its batch mean unchanged, so after the step the centers are the class means
    assert np.allclose(center.centers.numpy(), means, atol=1e-6)
    assert center.initialised.tolist() == [True, False, True, False, True, False]
    assert value == pytest.approx(center_loss_numpy(emb, means, y), rel=1e-5)  # the within-class spread only
    # a later batch initialises only the classes it brings for the first time
    center(torch.full((2, 4), 7.0), torch.tensor([1, 0]))
    assert np.allclose(center.centers[1].numpy(), 7.0)
    assert not np.allclose(center.centers[0].numpy(), 7.0)


@pytest.mark.parametrize(
    ("step", "ramp", "expected"), [(0, 4, 0.0), (1, 4, 0.25), (3, 4, 0.75), (4, 4, 1.0), (9, 4, 1.0), (0, 0, 1.0)]
)
def test_ramp_factor_values(step, ramp, expected):
    assert ramp_factor(step, ramp) == expected


def test_compound_ramps_the_center_weight_over_training_steps_only():
    loss = build_loss(LossConfig("compound", center_ramp_steps=4), 7, 5, class_counts=COUNTS).train()
    torch.manual_seed(1)
    seen = []
    for _ in range(6):
        logits, emb, y = torch.randn(8, 7), torch.randn(8, 5), torch.randint(0, 7, (8,))
        total = loss(logits, y, emb)
        t = loss.last_terms
        seen.append(t["center_ramp"])
        expected = 0.60 * t["ce"] + 0.25 * t["center_ramp"] * t["center"] + 0.15 * t["dls"]
        assert total.item() == pytest.approx(expected, rel=1e-5)
    assert seen == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    loss.eval()
    loss(torch.randn(2, 7), torch.tensor([0, 1]), torch.randn(2, 5))
    assert int(loss.step) == 6  # evaluation does not advance the ramp
    assert "step" in loss.state_dict()  # saved with the checkpoint: a resumed run continues the ramp


def test_dropout_does_not_enter_the_center_term():
    from core.models import create_model

    model = create_model("fernet_s", drop_rate=0.5).train()
    loss = build_loss(LossConfig("compound"), 7, model.embed_dim, class_counts=COUNTS).eval()
    loss.center.centers.normal_()
    x, y = torch.randn(6, 1, 48, 48), torch.tensor([0, 1, 2, 3, 4, 5])
    outs = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        logits, emb = model.forward_train(x)
        loss(logits, y, emb)
        outs.append((logits, emb, loss.last_terms["center"]))
    assert not torch.allclose(outs[0][0], outs[1][0])  # the dropout mask did change the logits
    assert torch.equal(outs[0][1], outs[1][1]) and outs[0][2] == outs[1][2]  # but not the center term
    with torch.no_grad():  # the embedding is the plain spatial mean of the last feature map (FerNet has no neck)
        assert torch.allclose(outs[0][1], model.forward_features(x).mean(dim=(2, 3)), atol=1e-6)


def test_compound_without_embedding_is_a_clear_error():
    loss = build_loss(LossConfig("compound"), 7, 5, class_counts=COUNTS)
    with pytest.raises(ValueError, match="embedding"):
        loss(torch.randn(2, 7), torch.tensor([0, 1]))


def test_center_update_follows_wen_eq4():
    center = CenterLoss(2, 2, alpha=0.5).train()
    center.initialised.fill_(True)  # centers at zero, as set: Eq. 4 alone
    emb = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    center(emb, torch.tensor([0, 0, 1]))
    # class 0: delta = ((0-1)+(0-3)) / (1+2) = -4/3 -> c = 0 - 0.5 * (-4/3) = 2/3 ; class 1: 0.5 * 4 / 2 = 1
    assert torch.allclose(center.centers, torch.tensor([[2 / 3, 0.0], [0.0, 1.0]]), atol=1e-6)


def test_center_loss_shrinks_intra_class_distance():
    torch.manual_seed(0)
    x = torch.randn(64, 8)
    y = torch.arange(64) % 4
    proj = torch.nn.Linear(8, 6)
    center = CenterLoss(4, 6, alpha=0.5).train()
    opt = torch.optim.SGD(proj.parameters(), lr=0.1)

    def spread() -> float:
        with torch.no_grad():
            e = proj(x)
            return float(sum((e[y == k] - e[y == k].mean(0)).norm(dim=1).mean() for k in range(4)))

    before = spread()
    for _ in range(60):
        opt.zero_grad()
        center(proj(x), y).backward()
        opt.step()
    assert spread() < 0.5 * before


@pytest.mark.parametrize("name", ["ce", "weighted_ce", "dls", "compound"])
def test_soft_targets_accepted_and_one_hot_equals_hard(name):
    loss = build_loss(LossConfig(name), 7, 5, class_counts=COUNTS).eval()
    logits, emb = torch.randn(4, 7), torch.randn(4, 5)
    y = torch.tensor([0, 3, 6, 1])
    hard = loss(logits, y, emb)
    one_hot = loss(logits, F.one_hot(y, 7).float(), emb)
    assert torch.isfinite(hard) and hard.item() == pytest.approx(one_hot.item(), rel=1e-5)
    soft = torch.rand(4, 7)
    assert torch.isfinite(loss(logits, soft, emb))


def test_compound_gradcheck_tiny_case():
    loss = CompoundLoss(LossConfig("compound"), 3, 2, class_counts=[2, 5, 9]).double().eval()
    loss.center.centers.normal_()
    logits = torch.randn(3, 3, dtype=torch.double, requires_grad=True)
    emb = torch.randn(3, 2, dtype=torch.double, requires_grad=True)
    y = torch.tensor([0, 2, 1])
    assert torch.autograd.gradcheck(lambda lg, e: loss(lg, y, e), (logits, emb))


def test_bad_configs_are_clear_errors():
    with pytest.raises(ValueError, match="unknown loss 'focal'"):
        build_loss(LossConfig("focal"), 7, 4)
    with pytest.raises(ValueError, match="class_counts"):
        build_loss(LossConfig("dls"), 7, 4)
    with pytest.raises(ValueError, match="smoothing"):
        LossConfig(smoothing=1.5)
    assert list_losses() == ["ce", "compound", "dls", "weighted_ce"]
