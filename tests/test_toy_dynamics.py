"""The linear Siamese toy of ch. 6b (Tian, Chen & Ganguli 2021): its gradient, its collapses and its fixed points."""

import pytest
import torch

from sslcourse import toy_dynamics as toy

STEPS = 600  # enough for the collapsed variants to shrink by orders of magnitude (a fraction of a second)


def _random(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def test_loss_equals_a_per_sample_loop():
    theta, theta_q, xi = _random((3, 4), 0), _random((3, 3), 1), _random((3, 4), 2)
    x1, x2 = _random((5, 4), 3), _random((5, 4), 4)
    loop = sum(0.5 * torch.sum((theta_q @ theta @ x1[n] - xi @ x2[n]) ** 2) for n in range(5)) / 5
    assert torch.allclose(toy.linear_siamese_loss(theta, theta_q, xi, x1, x2), loop)


def test_stop_gradient_removes_the_target_branch_gradient():
    theta = _random((3, 4), 0).requires_grad_()
    x1, x2 = _random((8, 4), 3), _random((8, 4), 4)
    for stop, expected in [(True, (x1 @ theta.T - x2 @ theta.T).T @ x1 / 8),
                           (False, ((x1 - x2) @ theta.T).T @ (x1 - x2) / 8)]:
        # no predictor, target = the network: the two branches' gradients cancel partly without the stop
        (grad,) = torch.autograd.grad(toy.linear_siamese_loss(theta, None, theta, x1, x2, stop), theta)
        assert torch.allclose(grad, expected.detach()), stop


def test_sampled_gradient_matches_the_expected_gradient():
    d, n = 4, 200_000
    variances = torch.tensor([2.0, 1.0, 0.5, 0.25], dtype=torch.float64)
    theta, theta_q, xi = _random((3, d), 0).requires_grad_(), _random((3, 3), 1).requires_grad_(), _random((3, d), 2)
    x = _random((n, d), 5) * variances.sqrt()
    x1, x2 = x + 0.7 * _random((n, d), 6), x + 0.7 * _random((n, d), 7)
    sampled = torch.autograd.grad(toy.linear_siamese_loss(theta, theta_q, xi, x1, x2), [theta, theta_q])
    expected = toy.expected_gradients(theta.detach(), theta_q.detach(), xi, torch.diag(variances), 0.49)
    for s, e in zip(sampled, expected, strict=True):
        assert torch.allclose(s, e, atol=0.05 * e.abs().max()), (s, e)


def test_predictor_and_stop_gradient_keep_the_strong_directions_at_their_fixed_point():
    run = toy.train_linear_siamese(steps=toy.STEPS)
    predicted = torch.tensor(toy.predicted_singular_values(), dtype=torch.float64)
    final = run.theta_sv[-1]
    assert (predicted > 0).sum() >= 2 and (predicted == 0).sum() >= 1  # the settings show both fates
    assert torch.allclose(final[predicted > 0], predicted[predicted > 0], rtol=0.1), (final, predicted)
    assert torch.all(final[predicted == 0] < 0.1 * predicted.max()), final


@pytest.mark.parametrize("ablation", [{"predictor": False}, {"stop_gradient": False}])
def test_removing_the_predictor_or_the_stop_gradient_collapses(ablation):
    intact = toy.train_linear_siamese(steps=STEPS)
    broken = toy.train_linear_siamese(steps=STEPS, **ablation)
    assert broken.theta_sv[-1].max() < 0.05 * broken.theta_sv[0].max(), broken.theta_sv[-1]
    assert intact.theta_sv[-1].max() > 0.5 * max(toy.predicted_singular_values()), intact.theta_sv[-1]


def test_without_predictor_the_norm_shrinks_at_the_predicted_rate():
    # with Theta_q = I and Xi = Theta the expected step is Theta <- (1 - lr (beta^2 + gamma)) Theta
    run = toy.train_linear_siamese(predictor=False, steps=50)
    rate = 1 - toy.LR * (toy.NOISE_STD ** 2 + toy.WEIGHT_DECAY)
    norms = torch.linalg.vector_norm(run.theta_sv, dim=1)
    assert norms[-1] / norms[0] == pytest.approx(rate ** 50, rel=0.3)


def test_a_moving_average_target_without_predictor_collapses_too():
    run = toy.train_linear_siamese(predictor=False, momentum=0.9, steps=STEPS)
    assert run.theta_sv[-1].max() < 0.05 * run.theta_sv[0].max()


def test_trained_predictor_aligns_with_the_representation_and_regresses_the_target():
    start, end = toy.train_linear_siamese(steps=0), toy.train_linear_siamese(steps=toy.STEPS)
    assert end.predictor_misalignment() < 0.2 * start.predictor_misalignment()
    assert end.predictor_excess_error() < 0.05 < start.predictor_excess_error()


def test_least_squares_predictor_has_no_excess_error():
    run = toy.train_linear_siamese(steps=50)
    run.theta_q = run.least_squares_predictor()
    assert abs(run.predictor_excess_error()) < 1e-9


def test_bad_settings_raise_a_clear_error():
    with pytest.raises(ValueError, match="momentum=0"):
        toy.train_linear_siamese(stop_gradient=False, momentum=0.9, steps=1)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        toy.linear_siamese_loss(_random((3, 4), 0), None, _random((3, 4), 0), _random((5, 3), 1), _random((5, 3), 2))
