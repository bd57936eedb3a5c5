"""Contrastive losses (Course: :ref:`ch5-infonce`): margins, triplets, InfoNCE and its variants."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def _check_shapes(loss: str, expected: str, ok: bool, **tensors: Tensor) -> None:
    """Raise a ValueError naming the loss, the shapes it expects and the shapes it was given."""
    if not ok:
        given = ", ".join(f"{name} {tuple(t.shape)}" for name, t in tensors.items())
        raise ValueError(f"{loss} expects {expected}; got {given}")


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    r"""Return the NT-Xent (normalized temperature-scaled cross-entropy) loss of SimCLR.

    With the 2N embeddings :math:`z_k` of both views L2-normalized and
    :math:`s_{ij} = z_i^\top z_j / \tau`, each sample :math:`i` must pick its other view
    :math:`p(i)` out of the 2N - 1 other samples of the batch:

    .. math::
        \mathcal{L} = \frac{1}{2N} \sum_{i=1}^{2N}
        -\log \frac{\exp(s_{i,p(i)})}{\sum_{k \ne i} \exp(s_{ik})}

    For identical embeddings (every pair equally similar) and :math:`\tau = 1` the loss is
    :math:`\log(2N - 1)`.

    Course: :ref:`ch0-first-run`, :ref:`ch5-infonce`, :ref:`ch5-methods`, :ref:`ch5b-temperature`.
    Paper: Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive
    Learning of Visual Representations", eq. (1).

    Args:
        z1: (N, D) projections of the first views.
        z2: (N, D) projections of the second views; row i is the positive of row i of z1.
        temperature: :math:`\tau`; 0.5 is SimCLR's CIFAR-10 setting (0.1 for ImageNet).
    Returns:
        scalar loss, averaged over the 2N anchors.
    """
    _check_shapes("nt_xent", "two (N, D) tensors of equal shape", z1.ndim == 2 and z1.shape == z2.shape,
                  z1=z1, z2=z2)
    n = z1.shape[0]
    dtype = torch.promote_types(z1.dtype, torch.float32)  # bf16 under autocast -> fp32; fp64 stays
    z = F.normalize(torch.cat([z1, z2]).to(dtype), dim=1)  # (2N, D)
    logits = z @ z.T / temperature  # (2N, 2N)
    logits = logits.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)  # p(i)
    return F.cross_entropy(logits, positives)


def hard_negative_nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5, beta: float = 1.0) -> Tensor:
    r"""Return NT-Xent with negatives re-weighted towards hard ones (Robinson, Chuang, Sra &
    Jegelka 2021, "Contrastive learning with hard negative samples", eq. 5 without debiasing).

    Each anchor's 2N - 2 negatives get importance weights :math:`w_{ik} \propto \exp(\beta s_{ik})`
    normalised to mean 1, so negatives close to the anchor count more:

    .. math::
        \mathcal{L} = \frac{1}{2N}\sum_i -\log \frac{e^{s_{i,p(i)}}}
        {e^{s_{i,p(i)}} + (2N-2)\,\frac{\sum_{k} w_{ik} e^{s_{ik}}}{\sum_k w_{ik}}},
        \qquad s_{ik} = z_i^\top z_k / \tau

    with k over the negatives of i. ``beta = 0`` gives ``nt_xent`` exactly.

    Course: :ref:`ch5-hard-negatives`. Shapes: z1, z2 (N, D) with N >= 2 (an anchor needs a
    negative); returns a scalar.
    """
    _check_shapes("hard_negative_nt_xent", "two (N, D) tensors of equal shape with N >= 2",
                  z1.ndim == 2 and z1.shape == z2.shape and len(z1) >= 2, z1=z1, z2=z2)
    n = z1.shape[0]
    dtype = torch.promote_types(z1.dtype, torch.float32)
    z = F.normalize(torch.cat([z1, z2]).to(dtype), dim=1)
    logits = z @ z.T / temperature  # (2N, 2N)
    positives = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    rows = torch.arange(2 * n, device=z.device)
    pos = logits[rows, positives]  # (2N,)
    negative = ~torch.eye(2 * n, dtype=torch.bool, device=z.device)
    negative[rows, positives] = False
    neg_logits = logits[negative].view(2 * n, 2 * n - 2)
    log_w = (beta * neg_logits).log_softmax(dim=1)  # weights summing to 1 = mean 1 times 1/(2N-2)
    log_neg = torch.log(torch.tensor(2.0 * n - 2, dtype=dtype)) + (log_w + neg_logits).logsumexp(dim=1)
    return (torch.logaddexp(pos, log_neg) - pos).mean()


def margin_contrastive(z1: Tensor, z2: Tensor, same: Tensor, margin: float = 1.0) -> Tensor:
    r"""Return the margin (pairwise) contrastive loss of Hadsell, Chopra & LeCun (2006).

    .. math::
        \mathcal{L} = \frac{1}{N}\sum_i y_i\, d_i^2 + (1 - y_i)\, \max(0, m - d_i)^2,
        \qquad d_i = \|z_{1,i} - z_{2,i}\|_2

    Similar pairs are pulled together; dissimilar pairs are pushed apart only until they are
    ``margin`` away. Course: :ref:`ch5-infonce`.

    Args:
        z1, z2: (N, D) embeddings of the two members of each pair.
        same: (N,) 1 (or True) where the pair is similar, 0 where it is not.
    """
    _check_shapes("margin_contrastive", "z1, z2 (N, D) of equal shape and same (N,)",
                  z1.ndim == 2 and z1.shape == z2.shape and same.shape == z1.shape[:1], z1=z1, z2=z2, same=same)
    d = (z1 - z2).norm(dim=1)
    y = same.to(d.dtype)
    return (y * d.square() + (1 - y) * (margin - d).clamp(min=0).square()).mean()


def triplet(anchor: Tensor, positive: Tensor, negative: Tensor, margin: float = 0.2) -> Tensor:
    r"""Return the triplet loss of FaceNet (Schroff, Kalenichenko & Philbin 2015, eq. 1).

    .. math:: \mathcal{L} = \frac{1}{N}\sum_i \max\big(0,\ \|a_i - p_i\|^2 - \|a_i - n_i\|^2 + \varepsilon\big)

    Once every negative is ``margin`` (:math:`\varepsilon`) further than its positive the loss
    is zero and stops teaching, whatever the rest of the space looks like (ch. 5, "the
    :math:`\varepsilon` problem").

    Args:
        anchor, positive, negative: (N, D) embeddings.
    """
    _check_shapes("triplet", "anchor, positive, negative (N, D) of equal shape",
                  anchor.ndim == 2 and anchor.shape == positive.shape == negative.shape,
                  anchor=anchor, positive=positive, negative=negative)
    d_pos = (anchor - positive).square().sum(1)
    d_neg = (anchor - negative).square().sum(1)
    return (d_pos - d_neg + margin).clamp(min=0).mean()


def info_nce(query: Tensor, positive_key: Tensor, negative_keys: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Return InfoNCE with an explicit set of negatives (van den Oord et al. 2018; MoCo's form).

    With L2-normalised vectors, each query must pick its positive key among 1 + M keys:

    .. math::
        \mathcal{L} = -\frac{1}{N}\sum_i \log
        \frac{\exp(q_i^\top k_i^+ / \tau)}{\exp(q_i^\top k_i^+ / \tau) + \sum_{j=1}^{M} \exp(q_i^\top k_j^- / \tau)}

    and :math:`I(q; k) \ge \log(M + 1) - \mathcal{L}` (Course: :ref:`ch5-mi-bound`).
    The keys are targets: they are detached here (MoCo's key encoder gets no gradient).

    Args:
        query: (N, D) online embeddings.
        positive_key: (N, D) keys; row i is the positive of query i.
        negative_keys: (M, D) negatives shared by all queries (a MoCo queue), or (N, M, D)
            negatives per query.
        temperature: :math:`\tau` (0.2 in MoCo v2).
    """
    _check_shapes("info_nce", "query and positive_key (N, D), negative_keys (M, D) or (N, M, D)",
                  query.ndim == 2 and positive_key.shape == query.shape and negative_keys.ndim in (2, 3)
                  and negative_keys.shape[-1] == query.shape[1]
                  and (negative_keys.ndim == 2 or negative_keys.shape[0] == query.shape[0]),
                  query=query, positive_key=positive_key, negative_keys=negative_keys)
    dtype = torch.promote_types(query.dtype, torch.float32)
    q = F.normalize(query.to(dtype), dim=-1)
    k_pos = F.normalize(positive_key.detach().to(dtype), dim=-1)
    k_neg = F.normalize(negative_keys.detach().to(dtype), dim=-1)
    pos = (q * k_pos).sum(-1, keepdim=True)  # (N, 1)
    neg = q @ k_neg.T if k_neg.ndim == 2 else torch.einsum("nd,nmd->nm", q, k_neg)  # (N, M); n: query, m: negative
    logits = torch.cat([pos, neg], dim=1) / temperature
    return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long, device=q.device))


def supcon(z: Tensor, labels: Tensor, temperature: float = 0.1) -> Tensor:
    r"""Return the supervised contrastive loss with the sum over positives outside the log
    (Khosla et al. 2020, eq. 2, :math:`\mathcal{L}^{sup}_{out}`, the form they recommend).

    .. math::
        \mathcal{L} = \frac{1}{|I'|}\sum_{i \in I'} \frac{-1}{|P(i)|} \sum_{p \in P(i)}
        \log \frac{\exp(z_i^\top z_p / \tau)}{\sum_{a \ne i} \exp(z_i^\top z_a / \tau)},
        \qquad I' = \{i : |P(i)| > 0\}

    :math:`P(i)` are the other samples with the label of :math:`i` (all views of all images
    of that class). The paper's average over :math:`P(i)` is undefined for an anchor without
    any positive, so such anchors are left out of the mean (:math:`I'` instead of all anchors
    :math:`I`; they still serve as negatives of the others). If no anchor has a positive, the
    loss is 0, still connected to the graph of ``z`` so ``backward`` runs (with zero gradients).

    Args:
        z: (B, D) embeddings of all views (stack the views along the batch).
        labels: (B,) class of each row.
        temperature: :math:`\tau` (0.1 in the paper).
    """
    _check_shapes("supcon", "z (B, D) and labels (B,)", z.ndim == 2 and labels.shape == z.shape[:1],
                  z=z, labels=labels)
    dtype = torch.promote_types(z.dtype, torch.float32)
    z = F.normalize(z.to(dtype), dim=1)
    self_mask = torch.eye(len(z), dtype=torch.bool, device=z.device)
    logits = (z @ z.T / temperature).masked_fill(self_mask, float("-inf"))  # (B, B)
    log_prob = logits.log_softmax(dim=1).masked_fill(self_mask, 0.0)
    positives = (labels[:, None] == labels[None, :]) & ~self_mask
    n_pos = positives.sum(1)
    has_pos = n_pos > 0
    per_anchor = -(log_prob * positives).sum(1)[has_pos] / n_pos[has_pos]  # (|I'|,)
    # sum / count rather than mean: an empty per_anchor gives 0 (with a grad_fn), not NaN
    return per_anchor.sum() / has_pos.sum().clamp_min(1)


def clip_loss(image_emb: Tensor, text_emb: Tensor, temperature: float = 0.07) -> Tensor:
    r"""Return CLIP's symmetric contrastive loss (Radford et al. 2021, fig. 3).

    With normalised embeddings and :math:`S_{ij} = u_i^\top v_j / \tau`, the mean of the
    cross-entropies of picking text i for image i (rows) and image i for text i (columns).

    Args:
        image_emb: (N, D); text_emb: (N, D), row i describes image i.
        temperature: :math:`\tau`; CLIP learns it, starting at 0.07.
    """
    _check_shapes("clip_loss", "image_emb and text_emb (N, D) of equal shape",
                  image_emb.ndim == 2 and image_emb.shape == text_emb.shape, image_emb=image_emb, text_emb=text_emb)
    dtype = torch.promote_types(image_emb.dtype, torch.float32)
    u = F.normalize(image_emb.to(dtype), dim=1)
    v = F.normalize(text_emb.to(dtype), dim=1)
    logits = u @ v.T / temperature  # (N, N)
    target = torch.arange(len(u), device=u.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def cpc_info_nce(context: Tensor, future: Tensor, w: Tensor) -> Tensor:
    r"""Return CPC's InfoNCE with step-specific bilinear scores (van den Oord et al. 2018, eq. 3-4).

    For each prediction step k, sample i's context :math:`c_i` scores every sample j's future
    latent with :math:`f_k = z_{j,t+k}^\top W_k c_i`; the other samples of the batch are the
    negatives. The loss averages the k cross-entropies.

    Args:
        context: (N, C) context vectors :math:`c_t` (output of the autoregressive network).
        future: (N, K, D) latents :math:`z_{t+1..t+K}` of the same sequences. Not detached:
            in CPC the encoder that makes them is trained by this loss too.
        w: (K, D, C) one bilinear matrix :math:`W_k` per step.
    """
    _check_shapes("cpc_info_nce", "context (N, C), future (N, K, D) and w (K, D, C)",
                  context.ndim == 2 and future.ndim == 3 and w.ndim == 3 and future.shape[0] == context.shape[0]
                  and w.shape == (future.shape[1], future.shape[2], context.shape[1]),
                  context=context, future=future, w=w)
    scores = torch.einsum("jkd,kdc,ic->kij", future, w, context)  # (K, N, N): k step, i context, j future
    k, n, _ = scores.shape
    target = torch.arange(n, device=scores.device).repeat(k)
    return F.cross_entropy(scores.reshape(k * n, n).to(torch.promote_types(scores.dtype, torch.float32)), target)
