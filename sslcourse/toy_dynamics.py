r"""A linear Siamese network that trains in a second: why BYOL and SimSiam do not collapse.

Course: :ref:`ch6b-why-no-collapse`. The model of Tian, Chen & Ganguli (2021, "Understanding
self-supervised learning dynamics without contrastive pairs"), in the book's letters: inputs
:math:`x \sim \mathcal N(0, \Sigma)` in :math:`d` dimensions, two views :math:`x_1 = x + \delta_1`
and :math:`x_2 = x + \delta_2` with independent noise :math:`\delta \sim \mathcal N(0, \beta^2 I)`,
a linear online network :math:`\Theta` (:math:`D \times d`), a linear predictor :math:`\Theta_q`
(:math:`D \times D`) and a target :math:`\Xi` (:math:`\Theta` itself, as in SimSiam, or its moving
average, as in BYOL), trained by gradient descent with weight decay :math:`\gamma` on

.. math:: \mathcal L = \tfrac12\, \mathbb E \bigl\lVert \Theta_q \Theta x_1 - \operatorname{sg}(\Xi x_2) \bigr\rVert^2.

The paper writes :math:`W, W_p, W_a` and :math:`\eta` for the weight decay; the book keeps
:math:`W` for W-MSE's whitened batch and :math:`\eta` for SimSiam's per-image target.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

# The toy's settings (one place, with their meaning). Course: :ref:`ch6b-why-no-collapse`.
VARIANCES = (4.0, 2.0, 1.0, 0.5, 0.25, 0.125)  # eigenvalues of the data covariance Sigma (its axes are the basis)
NOISE_STD = 1.0  # beta: std of the augmentation noise added to each view, per dimension
WEIGHT_DECAY = 0.1  # gamma, on the network and the predictor (the paper's fixed points need both)
LR = 0.1  # step size of plain gradient descent
STEPS = 1000
BATCH_SIZE = 256  # images per step; each gives two noisy views


def linear_siamese_loss(theta: Tensor, theta_q: Tensor | None, xi: Tensor, x1: Tensor, x2: Tensor,
                        stop_gradient: bool = True) -> Tensor:
    r"""Return :math:`\tfrac12` the batch mean of :math:`\lVert \Theta_q \Theta x_1 - \Xi x_2 \rVert^2`.

    Args:
        theta: the online network :math:`\Theta`, (D, d).
        theta_q: the predictor :math:`\Theta_q`, (D, D); ``None`` for no predictor (the identity).
        xi: the target :math:`\Xi`, (D, d): ``theta`` itself for SimSiam, a moving average for BYOL.
        x1, x2: the two views, (N, d).
        stop_gradient: detach the target branch :math:`\Xi x_2` (False: gradients flow through it).
    """
    if theta.ndim != 2 or x1.shape != x2.shape or x1.shape[1:] != theta.shape[1:]:
        raise ValueError(f"expected theta (D, d) and two views (N, d); got theta {tuple(theta.shape)}, "
                         f"views {tuple(x1.shape)} and {tuple(x2.shape)}")
    z1 = x1 @ theta.T  # (N, D): the online representation of view 1
    p1 = z1 if theta_q is None else z1 @ theta_q.T  # (N, D): its prediction of the target
    target = x2 @ xi.T  # (N, D)
    if stop_gradient:
        target = target.detach()
    return 0.5 * (p1 - target).pow(2).sum(1).mean()


def expected_gradients(theta: Tensor, theta_q: Tensor, xi: Tensor, covariance: Tensor,
                       noise_var: float) -> tuple[Tensor, Tensor]:
    r"""Return the expected gradients of the stop-gradient loss with respect to :math:`\Theta` and :math:`\Theta_q`.

    With the residual :math:`R = \Theta_q \Theta (\Sigma + \beta^2 I) - \Xi \Sigma` (the views share :math:`x`,
    not their noise, so :math:`\mathbb E[x_1 x_1^\top] = \Sigma + \beta^2 I` and
    :math:`\mathbb E[x_2 x_1^\top] = \Sigma`):

    .. math:: \nabla_{\Theta} \mathcal L = \Theta_q^\top R, \qquad \nabla_{\Theta_q} \mathcal L = R\, \Theta^\top.

    Weight decay is not included. Args: ``covariance`` :math:`\Sigma` (d, d), ``noise_var`` :math:`\beta^2`.
    """
    eye = torch.eye(covariance.shape[0], dtype=covariance.dtype)
    residual = theta_q @ theta @ (covariance + noise_var * eye) - xi @ covariance  # (D, d)
    return theta_q.T @ residual, residual @ theta.T


@dataclass
class ToyRun:
    """What one training run of the linear Siamese network recorded.

    ``steps`` and the singular values of the network (``theta_sv``, one row per recorded step,
    descending) and of the predictor (``predictor_sv``); the final matrices; the data's covariance
    and the views' noise variance, from which the diagnostics below are computed.
    """

    steps: list[int]
    theta_sv: Tensor  # (recorded steps, D)
    predictor_sv: Tensor  # (recorded steps, D); the identity's ones without a predictor
    theta: Tensor
    theta_q: Tensor
    xi: Tensor
    covariance: Tensor
    noise_var: float
    losses: list[float] = field(default_factory=list)

    def representation_correlation(self) -> Tensor:
        r"""Return the online view's correlation :math:`F = \mathbb E[z z^\top]`, (D, D).

        :math:`F = \Theta (\Sigma + \beta^2 I) \Theta^\top` for :math:`z = \Theta x_1`."""
        eye = torch.eye(self.covariance.shape[0], dtype=self.covariance.dtype)
        return self.theta @ (self.covariance + self.noise_var * eye) @ self.theta.T

    def least_squares_predictor(self) -> Tensor:
        r"""Return the linear map from :math:`z = \Theta x_1` to :math:`z' = \Xi x_2` with the least squared error.

        :math:`\mathbb E[z' z^\top]\, F^{+} = \Xi \Sigma \Theta^\top F^{+}`; for Gaussian data it is
        :math:`\mathbb E[z' \mid z]`. The pseudo-inverse leaves out directions the network has dropped."""
        f = self.representation_correlation()
        return self.xi @ self.covariance @ self.theta.T @ torch.linalg.pinv(f, hermitian=True, rtol=1e-6)

    def predictor_excess_error(self) -> float:
        r"""Return the predictor's expected squared error on :math:`z'` over the least-squares predictor's, minus 1.

        0 when :math:`\Theta_q` is :math:`\mathbb E[z' \mid z]`. The error of a map :math:`P` is
        :math:`\operatorname{tr}(P F P^\top) - 2 \operatorname{tr}(P\, \Theta \Sigma \Xi^\top)
        + \operatorname{tr}(\Xi (\Sigma + \beta^2 I) \Xi^\top)`."""
        eye = torch.eye(self.covariance.shape[0], dtype=self.covariance.dtype)
        f = self.representation_correlation()
        cross = self.theta @ self.covariance @ self.xi.T  # E[z z'^T], (D, D)
        target = torch.trace(self.xi @ (self.covariance + self.noise_var * eye) @ self.xi.T)

        def error(p: Tensor) -> Tensor:
            return torch.trace(p @ f @ p.T) - 2 * torch.trace(p @ cross) + target

        best = error(self.least_squares_predictor())
        return float(error(self.theta_q) / best.clamp_min(1e-12) - 1)

    def predictor_misalignment(self) -> float:
        r"""Return how far the predictor is from sharing its eigenvectors with :math:`F`, between 0 and 1.

        :math:`\lVert \Theta_q F - F \Theta_q \rVert / (2 \lVert \Theta_q \rVert \lVert F \rVert)`, Frobenius norms.

        0 when the predictor and :math:`F` commute, that is when they share their
        eigenvectors (Tian et al. 2021's observation). Random matrices give a value well above 0."""
        f = self.representation_correlation()
        commutator = self.theta_q @ f - f @ self.theta_q
        return float(torch.linalg.norm(commutator) / (2 * torch.linalg.norm(self.theta_q) * torch.linalg.norm(f)))


def predicted_singular_values(variances: tuple[float, ...] = VARIANCES, noise_std: float = NOISE_STD,
                              weight_decay: float = WEIGHT_DECAY) -> list[float]:
    r"""Return the network's singular value at the stable non-zero fixed point, one per data direction (0: collapsed).

    Along an eigen-direction of :math:`\Sigma` with variance :math:`\kappa`, a network gain :math:`\psi` and a
    predictor gain :math:`\varphi` (aligned, SimSiam's target :math:`\Xi = \Theta`) follow
    :math:`\dot\psi = \psi\,(\kappa \varphi - (\kappa + \beta^2) \varphi^2 - \gamma)` and
    :math:`\dot\varphi = \psi^2 (\kappa - (\kappa + \beta^2) \varphi) - \gamma \varphi`. Both vanish at
    :math:`\psi = \varphi = \bigl(\kappa + \sqrt{\kappa^2 - 4 \gamma (\kappa + \beta^2)}\bigr)
    / (2 (\kappa + \beta^2))`, which exists when :math:`\kappa^2 > 4 \gamma (\kappa + \beta^2)`; otherwise
    only :math:`\psi = 0` is left."""
    beta2, out = noise_std ** 2, []
    for s in variances:
        discriminant = s * s - 4 * weight_decay * (s + beta2)
        out.append((s + math.sqrt(discriminant)) / (2 * (s + beta2)) if discriminant > 0 else 0.0)
    return out


def train_linear_siamese(predictor: bool = True, stop_gradient: bool = True, momentum: float = 0.0,
                         variances: tuple[float, ...] = VARIANCES, noise_std: float = NOISE_STD,
                         weight_decay: float = WEIGHT_DECAY, lr: float = LR, steps: int = STEPS,
                         batch_size: int = BATCH_SIZE, init_scale: float = 1.0, record_every: int = 10,
                         seed: int = 0) -> ToyRun:
    r"""Return the record of a linear Siamese network trained by minibatch gradient descent with weight decay.

    Each step draws ``batch_size`` inputs :math:`x \sim \mathcal N(0, \operatorname{diag}(\text{variances}))`
    and two noisy views of each, takes one step on :func:`linear_siamese_loss` plus
    :math:`\tfrac\gamma2 (\lVert\Theta\rVert^2 + \lVert\Theta_q\rVert^2)`, then moves the target:
    :math:`\Xi \leftarrow m\, \Xi + (1 - m)\, \Theta` (``momentum`` :math:`m = 0`: :math:`\Xi = \Theta`, SimSiam).

    Args:
        predictor: train a predictor :math:`\Theta_q` (False: the identity, the collapsing ablation).
        stop_gradient: detach the target (False: only with ``momentum=0``, gradients through both views).
        init_scale: multiplies the initial network (singular values about 0.1 to 2 at 1). Collapse stays a
            fixed point of the intact model; ch. 6b shows that a start at 0.05 still leaves it.
    """
    if not stop_gradient and momentum != 0.0:
        raise ValueError(f"stop_gradient=False needs momentum=0 (the target is then the network itself); "
                         f"got momentum={momentum}: a moving-average target has no gradient to stop")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1); got {momentum}")
    generator = torch.Generator().manual_seed(seed)
    d = len(variances)
    scale = torch.tensor(variances, dtype=torch.float64).sqrt()
    theta = (init_scale * torch.randn(d, d, generator=generator, dtype=torch.float64) / math.sqrt(d)).requires_grad_()
    # The predictor starts small and random: it has to learn its alignment.
    theta_q = (0.1 * torch.randn(d, d, generator=generator, dtype=torch.float64) / math.sqrt(d)).requires_grad_()
    params = [theta, theta_q] if predictor else [theta]
    xi = theta.detach().clone()
    record = {"steps": [], "theta_sv": [], "predictor_sv": [], "losses": []}
    eye = torch.eye(d, dtype=torch.float64)
    for step in range(steps + 1):
        if step % record_every == 0 or step == steps:
            with torch.no_grad():
                record["steps"].append(step)
                record["theta_sv"].append(torch.linalg.svdvals(theta))
                record["predictor_sv"].append(torch.linalg.svdvals(theta_q if predictor else eye))
        if step == steps:
            break
        x = torch.randn(batch_size, d, generator=generator, dtype=torch.float64) * scale  # (N, d)
        x1 = x + noise_std * torch.randn(batch_size, d, generator=generator, dtype=torch.float64)
        x2 = x + noise_std * torch.randn(batch_size, d, generator=generator, dtype=torch.float64)
        target = theta if momentum == 0.0 else xi
        loss = linear_siamese_loss(theta, theta_q if predictor else None, target, x1, x2, stop_gradient)
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g in zip(params, grads, strict=True):
                p -= lr * (g + weight_decay * p)
            xi = theta.detach().clone() if momentum == 0.0 else momentum * xi + (1 - momentum) * theta.detach()
        record["losses"].append(loss.item())
    return ToyRun(steps=record["steps"], theta_sv=torch.stack(record["theta_sv"]),
                  predictor_sv=torch.stack(record["predictor_sv"]), theta=theta.detach(),
                  theta_q=(theta_q if predictor else eye).detach(), xi=xi,
                  covariance=torch.diag(scale ** 2), noise_var=noise_std ** 2, losses=record["losses"])
