from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslcourse import disentangle, exercises


def test_nt_xent_uniform_right_and_wrong(capsys):
    assert exercises.check_nt_xent_uniform(math.log(15), batch_size=8)
    assert "Correct" in capsys.readouterr().out
    assert not exercises.check_nt_xent_uniform(math.log(16), batch_size=8)
    assert "Not yet" in capsys.readouterr().out


def test_nt_xent_implementation_right_wrong_and_crashing(capsys):
    def right(z1, z2, t):
        z = F.normalize(torch.cat([z1, z2]), dim=1)
        sim = (z @ z.T / t).fill_diagonal_(float("-inf"))
        n = len(z1)
        return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

    def forgot_normalisation(z1, z2, t):
        z = torch.cat([z1, z2])
        sim = (z @ z.T / t).fill_diagonal_(float("-inf"))
        n = len(z1)
        return F.cross_entropy(sim, torch.cat([torch.arange(n, 2 * n), torch.arange(n)]))

    assert exercises.check_nt_xent_implementation(right)
    assert not exercises.check_nt_xent_implementation(forgot_normalisation)
    assert not exercises.check_nt_xent_implementation(lambda a, b, t: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


def test_chance_accuracy_right_and_wrong():
    assert exercises.check_chance_accuracy(0.125) and exercises.check_chance_accuracy(12.5)
    assert not exercises.check_chance_accuracy(0.5)


def test_uses_training_labels_right_and_wrong():
    assert exercises.check_uses_training_labels({"linear probe", "kNN", "NCC", "fine-tuning"})
    assert not exercises.check_uses_training_labels({"linear probe", "k-means"})


def test_mig_permutation_accepts_the_true_factors_mig_and_rejects_about_one():
    gen = torch.Generator().manual_seed(0)
    factors = torch.rand(500, 3, generator=gen, dtype=torch.float64)
    factors[:, 0] = torch.randint(0, 4, (500,), generator=gen).double()  # a discrete factor, like the shape
    permuted = factors[:, [2, 0, 1]] * torch.tensor([0.5, 3.0, 7.0], dtype=torch.float64)
    assert exercises.check_mig_permutation(disentangle.mig(permuted, factors), factors)
    assert not exercises.check_mig_permutation(1.0, factors)  # "about 1": the finite-sample MIG is lower
    rotated = factors @ torch.linalg.qr(torch.randn(3, 3, generator=gen, dtype=torch.float64)).Q
    assert not exercises.check_mig_permutation(disentangle.mig(rotated, factors), factors)


def test_linear_cka_check_right_and_wrong():
    def right(x, y):
        x, y = x - x.mean(0), y - y.mean(0)
        return ((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())).item()

    def uncentred(x, y):
        return ((y.T @ x).norm() ** 2 / ((x.T @ x).norm() * (y.T @ y).norm())).item()

    assert exercises.check_linear_cka(right)
    assert not exercises.check_linear_cka(uncentred)


def test_linear_invariant_measures_right_and_wrong():
    assert exercises.check_linear_invariant_measures({"mean CCA", "R2 CCA", "R2 LR"})
    assert not exercises.check_linear_invariant_measures({"linear CKA", "mean CCA"})


def test_triplet_check_right_and_wrong():
    def right(a, p, n, m):
        return ((a - p).square().sum(1) - (a - n).square().sum(1) + m).clamp(min=0).mean()

    def unsquared(a, p, n, m):
        return ((a - p).norm(dim=1) - (a - n).norm(dim=1) + m).clamp(min=0).mean()

    assert exercises.check_triplet(right)
    assert not exercises.check_triplet(unsquared)


def test_info_nce_check_right_and_wrong():
    def right(q, k, neg, t):
        q, k, neg = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(neg, dim=1)
        logits = torch.cat([(q * k).sum(1, keepdim=True), q @ neg.T], dim=1) / t
        return F.cross_entropy(logits, torch.zeros(len(q), dtype=torch.long))

    def no_temperature(q, k, neg, t):
        return right(q, k, neg, 1.0)

    assert exercises.check_info_nce(right)
    assert not exercises.check_info_nce(no_temperature)


def test_supcon_check_right_and_wrong():
    def right(z, labels, t):
        z = F.normalize(z, dim=1)
        eye = torch.eye(len(z), dtype=torch.bool)
        log_prob = (z @ z.T / t).masked_fill(eye, float("-inf")).log_softmax(1).masked_fill(eye, 0)
        pos = (labels[:, None] == labels[None]) & ~eye
        return (-(log_prob * pos).sum(1) / pos.sum(1)).mean()

    def self_as_positive(z, labels, t):
        z = F.normalize(z, dim=1)
        log_prob = (z @ z.T / t).log_softmax(1)
        pos = labels[:, None] == labels[None]
        return (-(log_prob * pos).sum(1) / pos.sum(1)).mean()

    assert exercises.check_supcon(right)
    assert not exercises.check_supcon(self_as_positive)


def test_enqueue_check_right_and_wrong():
    def right(queue, ptr, keys):
        idx = (ptr + torch.arange(len(keys))) % len(queue)
        queue[idx] = keys
        return queue, (ptr + len(keys)) % len(queue)

    def no_wrap(queue, ptr, keys):
        end = min(ptr + len(keys), len(queue))
        queue[ptr:end] = keys[: end - ptr]
        return queue, end

    assert exercises.check_enqueue(right)
    assert not exercises.check_enqueue(no_wrap)


def test_infonce_bound_right_and_wrong():
    assert exercises.check_infonce_bound(math.log(4097) - 6.0)
    assert not exercises.check_infonce_bound(math.log(4096) + 6.0)


def test_vicreg_covariance_check_right_and_wrong():
    def right(z):
        zc = z - z.mean(0)
        cov = zc.T @ zc / (len(z) - 1)
        return (cov.square().sum() - cov.diagonal().square().sum()) / z.shape[1]

    def biased(z):
        zc = z - z.mean(0)
        cov = zc.T @ zc / len(z)
        return (cov.square().sum() - cov.diagonal().square().sum()) / z.shape[1]

    assert exercises.check_vicreg_covariance(right)
    assert not exercises.check_vicreg_covariance(biased)


def test_sinkhorn_check_right_wrong_and_misshaped():
    def right(scores, eps, iterations):
        q = torch.exp(scores / eps)
        q = q / q.sum()
        b, k = q.shape
        for _ in range(iterations):
            q = q / q.sum(0, keepdim=True) / k
            q = q / q.sum(1, keepdim=True) / b
        return q * b

    def softmax_only(scores, eps, iterations):
        return torch.softmax(scores / eps, dim=1)

    assert exercises.check_sinkhorn(right)
    assert not exercises.check_sinkhorn(softmax_only)
    assert not exercises.check_sinkhorn(lambda s, e, i: s.T)


def test_effective_rank_check_right_and_wrong():
    def right(z):
        s = torch.linalg.svdvals(z)
        p = s / s.sum()
        return float(torch.exp(-(p * p.log()).sum()))

    def of_eigenvalues(z):
        s = torch.linalg.svdvals(z) ** 2
        p = s / s.sum()
        return float(torch.exp(-(p * p.log()).sum()))

    assert exercises.check_effective_rank(right)
    assert not exercises.check_effective_rank(of_eigenvalues)


def test_dino_collapse_check_right_and_wrong():
    assert exercises.check_dino_collapse("one-hot", "Uniform ")
    assert not exercises.check_dino_collapse("uniform", "one-hot")


# --- chapter 4: predicting transformations and arrangements (04_transformations) ---


def test_hamming_selection_check_right_and_wrong():
    def greedy(n_tiles, n_permutations, seed):
        gen = torch.Generator().manual_seed(seed)
        pool = torch.rand(2000, n_tiles, generator=gen).argsort(1)
        chosen, nearest = [0], (pool != pool[0]).sum(1)
        for _ in range(n_permutations - 1):
            best = int(nearest.argmax())
            chosen.append(best)
            nearest = torch.minimum(nearest, (pool != pool[best]).sum(1))
        return pool[chosen]

    def random_choice(n_tiles, n_permutations, seed):
        gen = torch.Generator().manual_seed(seed)
        return torch.stack([torch.randperm(n_tiles, generator=gen) for _ in range(n_permutations)])

    assert exercises.check_hamming_selection(greedy)
    assert not exercises.check_hamming_selection(random_choice)
    assert not exercises.check_hamming_selection(lambda n, p, s: torch.arange(n).repeat(p, 1))


def test_position_labels_check_right_and_wrong():
    assert exercises.check_position_labels(2, 5, 3)
    assert not exercises.check_position_labels(5, 2, 3)  # row and column swapped


def test_rotation_ceilings_check_right_and_wrong():
    assert exercises.check_rotation_ceilings(0.25, 0.46875)
    assert not exercises.check_rotation_ceilings(0.5625, 0.46875)
    assert not exercises.check_rotation_ceilings(0.25, 0.5625)


def test_unshuffle_check_right_and_wrong():
    def right(tiles, perms, labels):
        return torch.stack([t[o.argsort()] for t, o in zip(tiles, perms[labels], strict=True)])

    def applies_again(tiles, perms, labels):
        return torch.stack([t[o] for t, o in zip(tiles, perms[labels], strict=True)])

    assert exercises.check_unshuffle(right)
    assert not exercises.check_unshuffle(applies_again)
    assert not exercises.check_unshuffle(lambda t, p, y: t)


# --- chapter 4: masked prediction (04_masked) ---


def test_patchify_check_accepts_the_library_and_rejects_channel_first_patches():
    from sslcourse import masking

    def channel_first(x, p):
        b, c, h, w = x.shape
        return x.reshape(b, c, h // p, p, w // p, p).permute(0, 2, 4, 1, 3, 5).reshape(b, -1, c * p * p)

    assert exercises.check_patchify(masking.patchify)
    assert not exercises.check_patchify(channel_first)
    assert not exercises.check_patchify(lambda x, p: x.flatten(1))


def test_bert_mask_check_accepts_the_library_and_rejects_always_mask_and_masked_padding():
    from sslcourse import masking

    def right(tokens, mask_token, vocab_size, special_tokens, p):
        return masking.bert_mask(tokens, mask_token, vocab_size, special_tokens, p)

    def always_mask(tokens, mask_token, vocab_size, special_tokens, p):
        selected = torch.rand(tokens.shape) < p
        return torch.where(selected, mask_token, tokens), torch.where(selected, tokens, -100), selected

    def selects_padding(tokens, mask_token, vocab_size, special_tokens, p):
        return masking.bert_mask(tokens, mask_token, vocab_size, (), p)

    assert exercises.check_bert_mask(right)
    assert not exercises.check_bert_mask(always_mask)
    assert not exercises.check_bert_mask(selects_padding)


def test_regression_colour_check_wants_the_mean_ab_not_either_colour():
    from sslcourse.color import rgb_to_lab

    lab = rgb_to_lab(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.0]]).view(2, 3, 1, 1)).flatten(1)
    mean = lab[:, 1:].mean(0)
    assert exercises.check_regression_colour(float(mean[0]), float(mean[1]))
    assert not exercises.check_regression_colour(float(lab[0, 1]), float(lab[0, 2]))
    assert not exercises.check_regression_colour(0.0, 0.0)


# --- chapters 0 and 1: introduction, evaluating and comparing representations ---


def _weighted_knn(train_x, train_y, test_x, test_y, k, temperature):
    sims = F.normalize(test_x, dim=1) @ F.normalize(train_x, dim=1).T
    top, where = sims.topk(k, dim=1)
    rows = torch.arange(len(test_x))[:, None].expand_as(where)
    votes = torch.zeros(len(test_x), int(train_y.max()) + 1).index_put_(
        (rows, train_y[where]), (top / temperature).exp(), accumulate=True)
    return (votes.argmax(1) == test_y).float().mean().item()


def test_knn_check_wants_cosine_top_k_and_exponential_weights(capsys):
    def unweighted(train_x, train_y, test_x, test_y, k, temperature):
        return _weighted_knn(train_x, train_y, test_x, test_y, k, 1e9)

    def euclidean(train_x, train_y, test_x, test_y, k, temperature):
        where = torch.cdist(test_x, train_x).topk(k, dim=1, largest=False).indices
        return (train_y[where].mode(1).values == test_y).float().mean().item()

    assert exercises.check_knn(_weighted_knn)
    assert not exercises.check_knn(unweighted)
    assert not exercises.check_knn(euclidean)
    assert not exercises.check_knn(lambda *args: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out


# --- chapter 5: contrastive learning (05_contrastive, 05_ablations) ---


def test_uniformity_check_accepts_all_pairs_i_ne_j_and_rejects_unnormalised_or_self_pairs(capsys):
    def right(z):
        z = F.normalize(z, dim=1)
        sq = torch.cdist(z, z).square()
        off = ~torch.eye(len(z), dtype=torch.bool)
        return torch.exp(-2 * sq[off]).mean().log().item()

    def unnormalised(z):
        return torch.exp(-2 * torch.pdist(z).square()).mean().log().item()

    def with_self_pairs(z):
        z = F.normalize(z, dim=1)
        return torch.exp(-2 * torch.cdist(z, z).square()).mean().log().item()

    assert exercises.check_uniformity(right)
    assert not exercises.check_uniformity(unnormalised)
    assert not exercises.check_uniformity(with_self_pairs)
    assert not exercises.check_uniformity(lambda z: z.nope())
    assert "AttributeError" in capsys.readouterr().out


# --- chapter 6: non-contrastive learning (06_noncontrastive, 06_collapse) ---


def test_barlow_dead_dimension_check_wants_one_per_constant_dimension():
    from sslcourse import losses

    z = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    z[:, 0] = 0.0  # a dead unit
    one_dead = float(losses.barlow_twins_terms(z, z.clone())[0])
    all_dead = float(losses.barlow_twins_terms(torch.zeros(64, 8), torch.zeros(64, 8))[0])
    assert exercises.check_barlow_dead_dimension(one_dead, all_dead)
    assert not exercises.check_barlow_dead_dimension(0.0, 8.0)  # "the loss cannot see it"
    assert not exercises.check_barlow_dead_dimension(1.0, 32.0)  # the worst case 4 per dimension


def test_momentum_half_life_check_accepts_the_closed_form_and_the_schedule_and_rejects_the_time_constant():
    from sslcourse.schedules import cosine_momentum

    def steps_to_half(m0: float) -> int:
        distance, n = 1.0, 0
        while distance > 0.5:
            distance *= cosine_momentum(n, 2000, m0)
            n += 1
        return n

    assert exercises.check_momentum_half_life(*(math.log(2) / -math.log(m) for m in (0.996, 0.99, 0.9)))
    assert exercises.check_momentum_half_life(*(steps_to_half(m) for m in (0.996, 0.99, 0.9)))
    assert not exercises.check_momentum_half_life(250, 100, 10)  # 1 / (1 - m)
    assert not exercises.check_momentum_half_life(173, 69, 0.5)


def test_line_rank_check_right_and_wrong():
    from sslcourse.analysis import effective_rank

    gen = torch.Generator().manual_seed(0)
    line = torch.randn(256, 1, generator=gen) * F.normalize(torch.randn(64, generator=gen), dim=0)
    noisy = line + 0.01 * torch.randn(256, 64, generator=gen)
    assert exercises.check_line_rank(effective_rank(line), effective_rank(noisy))
    assert not exercises.check_line_rank(1.0, 1.0)  # "noise of 1% changes nothing"
    assert not exercises.check_line_rank(64.0, 64.0)


def test_collapse_terms_check_right_and_wrong():
    assert exercises.check_collapse_terms({"invariance", "Covariance "}, {"invariance", "variance"})
    assert not exercises.check_collapse_terms({"invariance"}, {"invariance"})
    assert not exercises.check_collapse_terms({"invariance", "variance"}, {"invariance", "covariance"})


# --- chapter 2 ---


def test_label_smoothing_check_right_and_wrong():
    assert exercises.check_label_smoothing(torch.tensor([0.05, 0.05, 0.85, 0.05]), math.log(17))
    assert not exercises.check_label_smoothing(torch.tensor([0.0, 0.0, 0.8, 0.0]), math.log(17))  # s/K left out
    assert not exercises.check_label_smoothing(torch.tensor([0.05, 0.05, 0.85, 0.05]), 0.8)  # a probability, no gap


def test_weight_standardization_check_right_and_wrong():
    def right(w):
        centred = w - w.mean((1, 2, 3), keepdim=True)
        return centred / (w.var((1, 2, 3), keepdim=True, unbiased=False) + 1e-8).sqrt()

    def over_all_filters(w):
        return (w - w.mean()) / w.std()

    assert exercises.check_weight_standardization(right)
    assert not exercises.check_weight_standardization(over_all_filters)
    assert not exercises.check_weight_standardization(lambda w: w[0])  # wrong shape, no exception escapes


def test_class_separation_check_right_and_wrong():
    def pairwise(features, labels):
        unit = F.normalize(features.double(), dim=1)
        d = 1 - unit @ unit.T
        ks = labels.unique()
        block = torch.stack([torch.stack([d[labels == j][:, labels == k].mean() for k in ks]) for j in ks])
        return 1 - block.diag().mean() / block.mean()

    def pairs_weighted(features, labels):  # every pair of images weighted equally: wrong with unequal classes
        unit = F.normalize(features.double(), dim=1)
        d = 1 - unit @ unit.T
        same = labels[:, None] == labels[None, :]
        return 1 - d[same].mean() / d.mean()

    assert exercises.check_class_separation(pairwise)
    assert not exercises.check_class_separation(pairs_weighted)


def test_zero_shot_by_hand_check_right_and_wrong():
    assert exercises.check_zero_shot_by_hand(0, 2, 2)
    assert not exercises.check_zero_shot_by_hand(0, 1, 2)  # b's dot product with c_2 is 1.4 > 1


def test_noise_threshold_check_right_and_wrong():
    assert exercises.check_noise_threshold(0.75, 0.875)
    assert not exercises.check_noise_threshold(0.5, 0.5)  # "more than half wrong" is not the threshold


def test_gaussian_kl_right_wrong_and_misshaped(capsys):
    assert exercises.check_gaussian_kl(lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - logvar - 1))
    assert not exercises.check_gaussian_kl(lambda mu, logvar: 0.5 * (mu**2 + logvar.exp() - 1))  # forgot -log var
    assert not exercises.check_gaussian_kl(lambda mu, logvar: (0.5 * (mu**2 + logvar.exp() - logvar - 1)).sum(1))
    assert "shape" in capsys.readouterr().out


def test_principal_angles_right_and_wrong():
    def right(a, b):
        qa, qb = torch.linalg.qr(a).Q, torch.linalg.qr(b).Q
        return torch.rad2deg(torch.arccos(torch.linalg.svdvals(qa.T @ qb).clamp(-1, 1)))

    def unorthonormalised(a, b):  # cosines of raw bases are not cosines
        return torch.rad2deg(torch.arccos(torch.linalg.svdvals(a.T @ b).clamp(-1, 1)))

    assert exercises.check_principal_angles(right)
    assert not exercises.check_principal_angles(unorthonormalised)


def test_beta_limits_right_and_wrong():
    assert exercises.check_beta_limits(0.0, 0, 0.0)
    assert not exercises.check_beta_limits(0.0, 10, 0.0)
    assert not exercises.check_beta_limits(0.0, 0, 1.0)


def test_mean_reduction_beta_right_and_wrong():
    assert exercises.check_mean_reduction_beta(12288)
    assert not exercises.check_mean_reduction_beta(4 * 32 * 32)  # forgot the three channels


def test_causal_mask_right_and_wrong(capsys):
    def right(k, mask_type):
        rows, cols = torch.meshgrid(torch.arange(k), torch.arange(k), indexing="ij")
        c = k // 2
        before = (rows < c) | ((rows == c) & (cols < c))
        return (before | ((rows == c) & (cols == c) & (mask_type == "B"))).float()

    def centre_always(k, mask_type):  # type A must not see its own pixel
        return right(k, "B")

    assert exercises.check_causal_mask(right)
    assert not exercises.check_causal_mask(centre_always)
    assert not exercises.check_causal_mask(lambda k, t: torch.ones(3, 3))  # the whole kernel, one size
    assert "mask" in capsys.readouterr().out


def test_optimal_discriminator_right_and_wrong():
    assert exercises.check_optimal_discriminator(lambda p, q: p / (p + q))
    assert not exercises.check_optimal_discriminator(lambda p, q: q / (p + q))  # the generator's side
    assert not exercises.check_optimal_discriminator(lambda p, q: (p > q).double())  # a hard classifier


def test_bits_per_image_right_and_wrong():
    assert exercises.check_bits_per_image(360, 3 / 360)
    assert not exercises.check_bits_per_image(0.9 * 20 * 20 * 3, 3 / 1080)  # three values per pixel: not here
    assert not exercises.check_bits_per_image(360, 8 / 360)  # the class's values, not its bits
    assert not exercises.check_bits_per_image(360, 3 / 400)  # the pixels' count, not the bits
