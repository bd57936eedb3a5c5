"""Answer checks for the chapters' exercises: immediate feedback, right or wrong with a hint.

Each ``check_*`` function takes the learner's answer, prints a verdict and returns it as a
bool so notebooks (and tests) can use it. Course: :ref:`ch0-exercises`, :ref:`ch1-exercises`,
:ref:`ch1b-exercises`, :ref:`ch2-exercises`, :ref:`ch2-image-text-exercises`, :ref:`ch3-exercises`,
:ref:`ch3b-exercises`, :ref:`ch5-exercises`, :ref:`ch6-exercises`, :ref:`ch6b-exercises`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import losses
from .analysis import effective_rank
from .losses import nt_xent


def _verdict(ok: bool, right: str, hint: str) -> bool:
    print(("Correct. " + right) if ok else ("Not yet. " + hint))
    return ok


def check_nt_xent_uniform(value: float, batch_size: int = 8) -> bool:
    """Ch. 0, exercise "a loss you can compute by hand": NT-Xent at tau = 1 when all
    2N embeddings are identical."""
    expected = math.log(2 * batch_size - 1)
    return _verdict(
        abs(float(value) - expected) < 1e-3,
        f"Every one of the 2N - 1 = {2 * batch_size - 1} candidates is equally likely, so the loss is "
        f"log(2N - 1) = {expected:.4f}.",
        "With identical embeddings every similarity is the same. How many candidates does each anchor choose "
        "from, and what probability does the softmax give the positive?",
    )


def _compare_with_reference(fn: Callable[..., object], inputs: tuple, want: float, tol: float, hint: str) -> bool:
    """Call the learner's ``fn(*inputs)`` and compare its value with ``want``; never raise."""
    try:
        got = float(fn(*inputs))  # type: ignore[arg-type]
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    return _verdict(abs(got - want) < tol, f"Your value ({got:.5f}) matches the library's.",
                    f"You got {got:.5f}, the library gives {want:.5f}. {hint}")


def check_nt_xent_implementation(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Ch. 0/5 exercise: compare a learner's NT-Xent with the package's on random inputs."""
    gen = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=gen), torch.randn(16, 8, generator=gen)
    return _compare_with_reference(
        fn, (z1, z2, 0.5), float(nt_xent(z1, z2, 0.5)), 1e-4,
        "Did you L2-normalise, divide by the temperature, exclude each sample's similarity with itself "
        "and average over all 2N anchors?")


def check_chance_accuracy(value: float, num_classes: int = 8) -> bool:
    """Ch. 0 exercise: the accuracy of guessing uniformly among ``num_classes`` balanced classes."""
    return _verdict(
        abs(float(value) - 1 / num_classes) < 1e-3 or abs(float(value) - 100 / num_classes) < 1e-1,
        f"1/{num_classes} = {1 / num_classes:.3f}: any representation must beat this to be useful.",
        "With balanced classes a uniform guess is right once in how many tries?",
    )


def check_uses_training_labels(methods: set[str]) -> bool:
    """Ch. 1a exercise: which evaluations fit or vote with the training labels?"""
    expected = {"linear probe", "kNN", "NCC", "fine-tuning"}
    given = {m.strip() for m in methods}
    missing, extra = expected - given, given - expected
    return _verdict(
        not missing and not extra,
        "Only k-means is label-free: NMI/ARI use labels just to score its clusters.",
        (f"Think again about {', '.join(sorted(missing | extra))}. " if missing | extra else "")
        + "Which of them needs a label to fit a weight, cast a vote or compute a centre?",
    )


def check_mig_permutation(value: float, factors: torch.Tensor) -> bool:
    """Ch. 1a exercise: return whether ``value`` is the MIG of the true ``factors`` (n, K) with their
    columns permuted and each rescaled by a positive constant. That MIG equals the MIG of the
    unpermuted factors to rounding: the equal-width bins scale with a column, so every discretised
    column, and with it every mutual information estimate, is unchanged, and MIG does not ask which
    column holds a factor. It is below 1 mainly because the shapes' factors are not independent
    (position's range shrinks with scale; a background never has the shape's colour), and a
    little because a finite sample's plug-in mutual information is positive even between
    independent factors."""
    from .disentangle import mig

    expected = mig(factors, factors)
    return _verdict(
        abs(float(value) - expected) < 1e-9,
        f"{expected:.4f}, exactly the MIG of the true factors: a permutation and positive rescalings change no "
        "mutual information estimate, and MIG does not ask which dimension holds a factor.",
        f"The answer is not a round number: compare with the MIG of the true factors themselves (here {expected:.4f})"
        " and ask which of the numbers MIG is computed from a permutation or a positive rescaling can change.",
    )


# --- chapter 1: evaluating representations (01_evaluating) ---


def check_knn(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, float], float]) -> bool:
    """Return whether a learner's weighted kNN accuracy ``fn(train_x, train_y, test_x, test_y, k,
    temperature)`` equals ``evaluate.knn_accuracy`` at four (k, T) settings, on clusters of unequal
    size and norm (so cosine similarity, the top k and the exp(s / T) weights all matter).
    Ch. 1a exercise (Course: :ref:`ch1-exercises`)."""
    from .evaluate import knn_accuracy

    gen = torch.Generator().manual_seed(7)
    centres = torch.randn(3, 8, generator=gen)
    counts = torch.tensor([240, 60, 30])  # a large class wins an unweighted vote over many neighbours

    def sample(n_per_class: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.repeat_interleave(torch.arange(3), n_per_class)
        norms = torch.rand(len(y), 1, generator=gen) * 5 + 0.2  # norms vary: Euclidean neighbours differ
        return (centres[y] + 1.2 * torch.randn(len(y), 8, generator=gen)) * norms, y

    train_x, train_y = sample(counts)
    test_x, test_y = sample(torch.tensor([40, 40, 40]))
    wrong = []
    for k, t in [(1, 0.07), (20, 0.07), (150, 0.02), (150, 100.0)]:
        want = knn_accuracy(train_x, train_y, test_x, test_y, k=k, temperature=t)
        try:
            got = float(fn(train_x, train_y, test_x, test_y, k, t))  # type: ignore[arg-type]
        except Exception as err:  # the learner's code may fail in any way; report it
            return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
        if abs(got - want) > 1e-6:
            wrong.append(f"k={k}, T={t}: {got:.3f} instead of {want:.3f}")
    return _verdict(
        not wrong,
        "Cosine similarity, the k most similar training samples, votes weighted by exp(s / T): "
        "at T = 100 every weight is close to 1 and the vote is a plain majority.",
        "; ".join(wrong) + ". Normalise both feature sets to unit length, take the k largest similarities "
        "of each test sample, and add exp(s / T) to the score of each neighbour's class.")


def check_linear_cka(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Ch. 1b exercise: a learner's linear CKA against the library's on random inputs."""
    from .similarity import linear_cka

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(100, 12, generator=gen, dtype=torch.float64) + 3.0  # uncentred on purpose
    y = x[:, :6] @ torch.randn(6, 8, generator=gen, dtype=torch.float64) + torch.randn(100, 8, generator=gen,
                                                                                      dtype=torch.float64)
    return _compare_with_reference(fn, (x, y), linear_cka(x, y), 1e-6, "Did you centre each column first?")


def check_linear_invariant_measures(names: set[str]) -> bool:
    """Ch. 1b exercise: the measures unchanged by an invertible linear map of X."""
    expected = {"mean CCA", "R2 CCA", "R2 LR"}
    given = {n.strip() for n in names}
    wrong = sorted(given ^ expected)
    return _verdict(
        not wrong,
        "Mean CCA, R2_CCA and R2_LR depend only on the column space of X. PWCCA weighs by X's own "
        "columns and SVCCA truncates X's principal components: both see the map.",
        f"Look again at: {', '.join(wrong)}. A measure that depends only on the span of X's columns "
        "cannot see an invertible linear map.",
    )


def check_triplet(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Ch. 5 exercise: a learner's triplet loss (Euclidean, hinge, mean over triplets)."""
    gen = torch.Generator().manual_seed(1)
    a, p, n = (torch.randn(32, 4, generator=gen) for _ in range(3))
    return _compare_with_reference(
        fn, (a, p, n, 1.0), float(losses.triplet(a, p, n, 1.0)), 1e-5,
        "Use squared Euclidean distances, max(0, d(a,p) - d(a,n) + margin), and the mean over triplets.")


def check_info_nce(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Ch. 5 exercise: a learner's InfoNCE with a shared set of negatives (MoCo's form)."""
    gen = torch.Generator().manual_seed(2)
    q, k, neg = torch.randn(16, 8, generator=gen), torch.randn(16, 8, generator=gen), torch.randn(64, 8, generator=gen)
    return _compare_with_reference(
        fn, (q, k, neg, 0.2), float(losses.info_nce(q, k, neg, 0.2)), 1e-4,
        "Normalise all vectors; the logits are [q.k+, q.k-_1..M] / tau and the positive is class 0.")


def check_supcon(fn: Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]) -> bool:
    """Ch. 5 exercise: a learner's SupCon loss (sum over positives outside the log)."""
    gen = torch.Generator().manual_seed(3)
    z, labels = torch.randn(24, 8, generator=gen), torch.randint(0, 4, (24,), generator=gen)
    return _compare_with_reference(
        fn, (z, labels, 0.1), float(losses.supcon(z, labels, 0.1)), 1e-4,
        "Exclude the anchor from both the positives and the denominator, and average the log-probabilities "
        "over each anchor's positives before averaging over anchors.")


def check_enqueue(fn: Callable[[torch.Tensor, int, torch.Tensor], tuple[torch.Tensor, int]]) -> bool:
    """Ch. 5 exercise: a learner's FIFO queue update ``fn(queue, ptr, keys) -> (queue, ptr)``."""
    queue, ptr = torch.zeros(5, 1), 0
    try:
        for step in range(3):  # 2 keys per step into 5 slots: the third step wraps around
            queue, ptr = fn(queue.clone(), ptr, torch.full((2, 1), float(step + 1)))
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    want = torch.tensor([[3.0], [1.0], [2.0], [2.0], [3.0]])  # the 3s wrap around over the oldest 1
    ok = torch.equal(queue, want) and int(ptr) == 1
    return _verdict(ok, "The oldest keys are overwritten first and the pointer wraps around.",
                    f"After three steps of two keys (1s, 2s, 3s) into 5 slots we expect {want.flatten().tolist()} "
                    f"and pointer 1; you have {queue.flatten().tolist()} and pointer {int(ptr)}. "
                    "Write at (ptr + i) % size and advance ptr by the number of keys.")


def check_infonce_bound(value: float, num_negatives: int = 4096, loss: float = 6.0) -> bool:
    """Ch. 5 exercise: the mutual-information lower bound a given InfoNCE loss certifies."""
    want = math.log(num_negatives + 1) - loss
    return _verdict(abs(float(value) - want) < 1e-3,
                    f"log({num_negatives} + 1) - {loss} = {want:.3f} nats: the bound can never exceed "
                    f"log({num_negatives + 1}) = {math.log(num_negatives + 1):.2f} nats.",
                    "Each query chooses among the positive and the negatives: how many candidates is that, "
                    "and what is the loss of a uniform guess among them?")


# --- chapter 5: contrastive learning (05_contrastive, 05_ablations) ---
# (check_triplet, check_info_nce, check_supcon, check_enqueue and check_infonce_bound above are chapter 5's too.)


def _uniformity(z: torch.Tensor, t: float = 2.0) -> float:
    """Return log E_{i != j} exp(-t ||z_i - z_j||^2) over the L2-normalised rows of ``z``."""
    z = torch.nn.functional.normalize(z.double(), dim=1)
    # pdist lists each unordered pair once; the mean over i < j equals the mean over i != j
    return float(torch.pdist(z).square().mul(-t).exp().mean().log())


def check_uniformity(fn: Callable[[torch.Tensor], float]) -> bool:
    """Ch. 5b exercise: True if a learner's uniformity ``fn(z)`` (Wang & Isola 2020, t = 2, on
    the L2-normalised rows of z, over the pairs i != j) matches the reference on random features
    (Course: :ref:`ch5b-exercises`)."""
    gen = torch.Generator().manual_seed(7)
    z = 3.0 * torch.randn(64, 6, generator=gen, dtype=torch.float64) + 1.0  # not normalised, not centred
    return _compare_with_reference(
        fn, (z,), _uniformity(z), 1e-4,
        "L2-normalise the rows first, use squared Euclidean distances, leave out the pairs i = j "
        "(each would add exp(0) = 1), and take the log of the mean of exp(-2 d^2).")


def check_vicreg_covariance(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 6 exercise: VICReg's covariance term of one branch, sum of squared off-diagonal
    covariances (unbiased) divided by the dimension. The learner's c(Z) + c(Z') on two branches
    must equal ``losses.vicreg_covariance``, which sums the two branches."""
    gen = torch.Generator().manual_seed(4)
    z1 = torch.randn(64, 6, generator=gen) @ torch.randn(6, 6, generator=gen)  # correlated dimensions
    z2 = torch.randn(64, 6, generator=gen) @ torch.randn(6, 6, generator=gen)
    want = float(losses.vicreg_covariance(z1, z2))
    return _compare_with_reference(
        lambda a, b: fn(a) + fn(b), (z1, z2), want, 1e-4,
        "(Both values are c(Z) + c(Z') over two branches.) Centre each dimension, use the unbiased covariance "
        "(divide by N - 1), square only the off-diagonal entries, sum them and divide by the dimension D.")


def check_sinkhorn(fn: Callable[[torch.Tensor, float, int], torch.Tensor]) -> bool:
    """Ch. 6 exercise: a learner's Sinkhorn-Knopp ``fn(scores, epsilon, iterations) -> Q`` (B, K):
    rows sum to 1, columns to N / K, and Q agrees with the library."""
    gen = torch.Generator().manual_seed(5)
    scores = torch.nn.functional.normalize(torch.randn(48, 8, generator=gen), dim=1) @ \
        torch.nn.functional.normalize(torch.randn(8, 6, generator=gen), dim=0)
    try:
        q = torch.as_tensor(fn(scores, 0.05, 200)).double()
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    if q.shape != scores.shape:
        return _verdict(False, "", f"Q must have the shape of the scores {tuple(scores.shape)}, got {tuple(q.shape)}.")
    rows, cols = q.sum(1), q.sum(0)
    ok_rows = torch.allclose(rows, torch.ones_like(rows), atol=1e-3)
    ok_cols = torch.allclose(cols, torch.full_like(cols, 48 / 6), atol=1e-3 * 8)
    close = torch.allclose(q, losses.sinkhorn_knopp(scores, 0.05, 200).double(), atol=1e-3)
    return _verdict(
        ok_rows and ok_cols and close,
        "Every sample spreads one unit of mass and every prototype receives N / K: the equipartition that "
        "keeps SwAV from putting all samples in one cluster.",
        f"Row sums range {rows.min():.3f}-{rows.max():.3f} (want 1), column sums {cols.min():.2f}-{cols.max():.2f} "
        f"(want {48 / 6:.2f}). Start from exp(scores / epsilon) and alternate: divide each column by its sum "
        "(times K), then each row by its sum (times B); finish with rows summing to 1.")


def check_effective_rank(fn: Callable[[torch.Tensor], float]) -> bool:
    """Ch. 6 exercise: a learner's effective rank (exp of the entropy of the normalised
    singular values)."""
    gen = torch.Generator().manual_seed(6)
    z = torch.randn(100, 5, generator=gen) * torch.tensor([3.0, 2.0, 1.0, 0.5, 0.1])
    return _compare_with_reference(
        fn, (z,), effective_rank(z), 1e-3,
        "Take the singular values of z (not of its covariance), divide by their sum to get p, and return "
        "exp(-sum p log p).")


def check_dino_collapse(no_centering: str, no_sharpening: str) -> bool:
    """Ch. 6 exercise: which collapse each DINO ablation produces ("one-hot" or "uniform")."""
    given = (no_centering.strip().lower(), no_sharpening.strip().lower())
    return _verdict(
        given == ("one-hot", "uniform"),
        "Sharpening alone lets one dimension win for every image (one-hot); centering alone flattens the "
        "teacher's output towards the uniform distribution. Together they balance.",
        "Centering subtracts the running mean of the teacher's logits, so no dimension can win for every "
        "image. Sharpening divides by a small temperature, which turns any lead into a one-hot vector. "
        "What is left when one of them is removed?")



# --- chapter 6: non-contrastive learning (06_noncontrastive, 06_collapse) ---


def check_barlow_dead_dimension(one_dead: float, all_dead: float, dim: int = 8) -> bool:
    """Return whether ``one_dead`` and ``all_dead`` are Barlow Twins' on-diagonal term sum_i (1 - C_ii)^2
    for two identical views of ``dim`` dimensions of which one, or every one, is constant (ch. 6
    exercise ex6-barlow)."""
    ok_one, ok_all = abs(float(one_dead) - 1.0) < 1e-3, abs(float(all_dead) - dim) < 1e-3
    return _verdict(
        ok_one and ok_all,
        f"A constant dimension has correlation 0 with anything, so it costs (1 - 0)^2 = 1; a batch collapsed "
        f"to a point costs {dim}, one per dimension, however small its invariance error.",
        ("" if ok_one else "The other dimensions agree perfectly across identical views: what do they cost? "
         "The constant one is standardised to 0, so what is its C_ii? ")
        + ("" if ok_all else f"With every one of the {dim} dimensions constant, add up their diagonal terms."))


def check_momentum_half_life(m0_996: float, m0_99: float, m0_9: float) -> bool:
    """Return whether the three numbers are the steps a target with EMA momentum 0.996, 0.99 and 0.9 needs
    to close half of its distance to a fixed online network, ln 2 / -ln m (ch. 6 exercise ex6-momentum);
    the ceiling, or a count from the cosine schedule of a 2,000-step run, is accepted too."""
    want = [math.log(2) / -math.log(m) for m in (0.996, 0.99, 0.9)]
    given = [float(v) for v in (m0_996, m0_99, m0_9)]
    ok = all(abs(g - w) <= max(1.0, 0.03 * w) for g, w in zip(given, want, strict=True))
    reciprocal = all(abs(g - 1 / (1 - m)) <= max(1.0, 0.03 / (1 - m)) for g, m in zip(given, (0.996, 0.99, 0.9),
                                                                                          strict=True))
    return _verdict(
        ok,
        f"Half-lives of {want[0]:.0f}, {want[1]:.0f} and {want[2]:.1f} steps: each step keeps a fraction m of the "
        "distance, so n = ln 2 / -ln m, about 0.69 / (1 - m).",
        ("1 / (1 - m) is the time constant (the distance falls to 1/e, not to 1/2). " if reciprocal else "")
        + f"You gave {[round(g, 1) for g in given]}. After n steps of t <- m t + (1 - m) o the distance to a fixed "
        "o is m^n times the first one: solve m^n = 1/2 for n.")


def check_line_rank(line: float, noisy_line: float) -> bool:
    """Return whether ``line`` and ``noisy_line`` are the effective ranks of 256 embeddings in 64 dimensions
    that lie on one line (about 1), and of the same plus isotropic noise of std 0.01 (7 to 12 over random
    draws) (ch. 6b exercise ex6b-line)."""
    ok_line, ok_noisy = 1.0 - 1e-3 <= float(line) < 1.05, 7.0 <= float(noisy_line) <= 12.0
    return _verdict(
        ok_line and ok_noisy,
        "One non-zero singular value gives exactly 1; but 63 small singular values of the noise, each about 1% "
        "of the line's, together hold about 40% of the sum and lift the effective rank to about 10. Read it "
        "against an intact run, as the page does, not against 1.",
        ("A batch on one line has one non-zero singular value: what is exp of the entropy of p = (1, 0, ...)? "
         if not ok_line else "")
        + ("" if ok_noisy else f"You gave {float(noisy_line):.2f} for the noisy line. The effective rank uses the "
           "singular values themselves, not their squares: add up 63 values of about 0.01 sqrt(N) against the "
           "line's sqrt(N) and compute the entropy of p (analysis.effective_rank computes it for you)."))


def check_collapse_terms(point: set[str], line: set[str]) -> bool:
    """Return whether ``point`` and ``line`` are the VICReg terms (``invariance``, ``variance``,
    ``covariance``) that stay at zero on a batch collapsed to a point and on a batch whose dimensions all
    copy one coordinate of std 2 (ch. 6b exercise ex6b-terms)."""
    given_point, given_line = ({t.strip().lower() for t in s} for s in (point, line))
    want_point, want_line = {"invariance", "covariance"}, {"invariance", "variance"}
    wrong = [f"{name}: {sorted(given ^ want)}" for name, given, want in
             (("point", given_point, want_point), ("line", given_line, want_line)) if given != want]
    return _verdict(
        not wrong,
        "Only the variance term sees a point, only the covariance term sees a line: without the first the "
        "embeddings shrink (complete collapse), without the second they keep their spread but lose rank "
        "(dimensional collapse), the two rows of the ablation table.",
        f"Look again at {'; '.join(wrong)}. Compute losses.vicreg_terms(z, z) for each batch: which values are 0 "
        "(up to rounding)?")


# --- chapter 4: predicting transformations and arrangements (04_transformations) ---


def check_hamming_selection(fn: Callable[[int, int, int], torch.Tensor], target: int = 6) -> bool:
    """Ch. 4 exercise: a learner's greedy maximal-Hamming-distance selection of 24 jigsaw
    permutations of 9 tiles must return distinct permutations at least ``target`` apart
    (the library's ``pretext.jigsaw_permutations`` reaches 7 from 10,000 candidates)."""
    from .pretext import min_hamming_distance

    try:
        perms = torch.as_tensor(fn(9, 24, 0)).long()
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    if perms.shape != (24, 9):
        return _verdict(False, "", f"Return a (24, 9) tensor of permutations, got shape {tuple(perms.shape)}.")
    if not torch.equal(perms.sort(1).values, torch.arange(9).expand(24, 9)):
        return _verdict(False, "", "Every row must be a permutation of 0..8 (each value exactly once).")
    if len(perms.unique(dim=0)) < 24:
        return _verdict(False, "", "Some permutations are repeated: a repeated class can never be told apart.")
    d = min_hamming_distance(perms)
    return _verdict(
        d >= target,
        f"Every two of your classes differ in at least {d} of the 9 positions; 24 random permutations "
        "usually reach only 4 or 5.",
        f"Your minimum Hamming distance is {d}, the target {target}. At each step add the candidate whose "
        "distance to its *nearest* chosen permutation is the largest: the course's max-min variant, which "
        "guarantees a minimum distance (Noroozi & Favaro's Algorithm 1 maximises the *average* distance "
        "to the chosen set instead, which does not).")


def check_position_labels(a: int, b: int, c: int) -> bool:
    """Ch. 4 exercise: the relative-position labels of three neighbours of the centre patch at
    (12, 12) with stride 8: at (4, 20), (20, 4) and (12, 4)."""
    given = tuple(int(v) for v in (a, b, c))
    return _verdict(
        given == (2, 5, 3),
        "Top-right is 2, bottom-left 5 and left 3: the offsets (-1, +1), (+1, -1) and (0, -1) in "
        "pretext.NEIGHBOUR_OFFSETS.",
        f"You gave {given}. Divide each corner's offset from (12, 12) by the stride 8 to get (row, column) cells, "
        "then find that offset in pretext.NEIGHBOUR_OFFSETS (row-major, the centre skipped).")


def check_rotation_ceilings(random_angles: float, star_as_square: float) -> bool:
    """Ch. 4 exercise: the best rotation accuracy from the shape alone on shapes at random
    angles (chance, 0.25) and on the upright shapes with the star replaced by a square (3.75 / 8)."""
    ok_random = abs(float(random_angles) - 0.25) < 1e-3
    ok_square = abs(float(star_as_square) - 3.75 / 8) < 1e-3
    return _verdict(
        ok_random and ok_square,
        "At random angles a quarter turn gives an equally likely image, so the shape alone allows only chance "
        "(0.25); a second square turns the star's 1.0 into 0.25, and the shape-only best accuracy over the "
        "8 classes falls to 0.469.",
        ("" if ok_random else "At random angles, is a rotated image any less likely than an unrotated one? ")
        + ("" if ok_square else "A square looks the same at all four quarter turns: its best accuracy is 1/4. "
           "Average the 8 classes' best accuracies."))


def check_unshuffle(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 4 exercise: a learner's inverse of ``pretext.jigsaw_tiles``' shuffle must return the
    tiles in cell order (row-major)."""
    from .pretext import jigsaw_permutations, jigsaw_tiles

    gen = torch.Generator().manual_seed(4)
    x = torch.rand(3, 2, 9, 9, generator=gen)
    perms = jigsaw_permutations(9, 6, gen)
    tiles, labels = jigsaw_tiles(x, perms, labels=torch.tensor([1, 4, 5]), tile=3)  # no crop: tiles = cells
    cells = torch.stack([x[:, :, 3 * (j // 3):3 * (j // 3) + 3, 3 * (j % 3):3 * (j % 3) + 3] for j in range(9)], 1)
    try:
        got = torch.as_tensor(fn(tiles, perms, labels))
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    ok = got.shape == cells.shape and torch.equal(got, cells)
    shuffled_again = got.shape == cells.shape and torch.equal(
        got, torch.stack([t[o] for t, o in zip(tiles, perms[labels], strict=True)]))
    return _verdict(
        ok, "Position j of your output holds cell j: the argsort of a permutation is its inverse.",
        "Indexing with the permutation itself applies it a second time instead of undoing it; use its inverse "
        "(argsort)." if shuffled_again else f"Return (B, 9, C, t, t) = {tuple(cells.shape)} with cell j at position "
        "j; position i of the input holds cell permutations[label][i].")


# --- chapter 4: masked prediction (04_masked) ---


def check_patchify(fn: Callable[[torch.Tensor, int], torch.Tensor]) -> bool:
    """Ch. 4b exercise: a learner's patchify, compared entry by entry with ``masking.patchify``
    on non-square images of 3 channels (Course: :ref:`ch4b-exercises`)."""
    from .masking import patchify

    gen = torch.Generator().manual_seed(4)
    x = torch.rand(2, 3, 8, 12, generator=gen)
    want = patchify(x, 4)
    try:
        got = fn(x, 4)
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(want.shape):
        shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
        return _verdict(False, "", f"Expected patches of shape {tuple(want.shape)} = (B, N, p*p*C), got {shape}.")
    same_set = torch.allclose(got.sort(-1).values, want.sort(-1).values)
    return _verdict(
        torch.allclose(got, want),
        "Row-major patches, each flattened as (row, column, channel): masking.unpatchify inverts it.",
        "Each patch holds the right pixels but in another order: flatten (row, column, channel), channel last."
        if same_set else
        "Reshape to (B, C, H/p, p, W/p, p), put the two grid axes first and the channel last, then flatten.")


def check_bert_mask(fn: Callable[..., tuple[torch.Tensor, torch.Tensor, torch.Tensor]]) -> bool:
    """Ch. 4b exercise: a learner's BERT corruption ``fn(tokens, mask_token, vocab_size,
    special_tokens, p)``: the frequencies of the 80/10/10 rule on 200,000 tokens, special tokens
    never selected nor drawn as replacements, and -100 targets off the selection
    (Course: :ref:`ch4b-exercises`)."""
    vocab_size, mask_token, pad = 50, 1, 0
    torch.manual_seed(4)
    tokens = torch.randint(2, vocab_size, (400, 500))
    tokens[:, -50:] = pad  # padding at the end of every sequence
    try:
        inputs, targets, selected = fn(tokens, mask_token, vocab_size, (pad,), 0.15)
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    selected = selected.bool()
    ordinary = tokens != pad
    rate = selected[ordinary].float().mean().item()
    changed = inputs[selected] != tokens[selected]
    masked = (inputs[selected] == mask_token).float().mean().item()
    replaced = (changed & (inputs[selected] != mask_token)).float().mean().item()
    problems = []
    if abs(rate - 0.15) > 0.005:
        problems.append(f"{100 * rate:.1f}% of the ordinary tokens are selected (want 15%)")
    if abs(masked - 0.8) > 0.01:
        problems.append(f"{100 * masked:.1f}% of the selected become [MASK] (want 80%)")
    if abs(replaced - 0.1 * (1 - 1 / (vocab_size - 2))) > 0.01:
        problems.append(f"{100 * replaced:.1f}% of the selected become another token (want about 10%)")
    if (selected & ~ordinary).any() or (inputs[~ordinary] != pad).any():
        problems.append("special tokens ([PAD]) must never be selected or changed")
    if (inputs[selected & (inputs != mask_token)] < 2).any():
        problems.append("a random replacement must be an ordinary token, never [MASK] or [PAD]")
    if (inputs[~selected] != tokens[~selected]).any():
        problems.append("positions that are not selected must keep their token")
    if not (torch.equal(targets[selected], tokens[selected]) and (targets[~selected] == -100).all()):
        problems.append("targets must be the original token where selected and -100 elsewhere")
    return _verdict(not problems, "15% selected; of those 80% [MASK], 10% a random ordinary token, 10% unchanged.",
                    "; ".join(problems) + ".")


def check_regression_colour(a: float, b: float) -> bool:
    """Ch. 4b exercise: the ab a squared-error colorization predicts for a pixel that is sRGB red
    (1, 0, 0) half the time and green (0, 0.6, 0) otherwise: the mean of the two ab
    (Course: :ref:`ch4b-exercises`)."""
    from .color import rgb_to_lab

    lab = rgb_to_lab(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.6, 0.0]]).view(2, 3, 1, 1)).flatten(1)
    want = lab[:, 1:].mean(0)
    chroma = float(want.norm())
    return _verdict(
        abs(a - float(want[0])) < 1.0 and abs(b - float(want[1])) < 1.0,
        f"The squared error is minimised by the mean, (a, b) = ({want[0]:.1f}, {want[1]:.1f}): chroma {chroma:.1f}, "
        f"against {float(lab[0, 1:].norm()):.1f} for red and {float(lab[1, 1:].norm()):.1f} for green, a dull "
        "colour that is neither.",
        f"You gave ({a:.1f}, {b:.1f}). Convert both colours with color.rgb_to_lab and ask which single value "
        "minimises the average squared distance to the two ab targets.")


# --- chapter 2: supervised and image-text pre-training (02_transfer, 02_image_text) ---


def check_label_smoothing(target: torch.Tensor, gap: float) -> bool:
    """Ch. 2a exercise: the smoothed target of class 2 with K = 4, s = 0.2, and the logit gap
    (true class minus any other) at which the smoothed cross-entropy is smallest
    (Course: :ref:`ch2-exercises`)."""
    want = torch.tensor([0.05, 0.05, 0.85, 0.05])
    target = torch.as_tensor(target, dtype=torch.float32).flatten()
    target_ok = target.shape == want.shape and torch.allclose(target, want, atol=1e-4)
    gap_ok = abs(float(gap) - math.log(17)) < 1e-3
    problems = ([] if target_ok else ["the target puts 1 - s on the label and s/K on every class, the label included"])
    problems += [] if gap_ok else ["at the optimum the softmax equals q: the logits differ by log(q_y / q_other)"]
    return _verdict(target_ok and gap_ok,
                    f"q = (0.05, 0.05, 0.85, 0.05) and the best gap is log 17 = {math.log(17):.3f}: finite, unlike "
                    "plain cross-entropy, whose loss falls for ever as the gap grows.",
                    "; ".join(problems) + ".")


def check_weight_standardization(fn: Callable[[torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 2a exercise: a learner's weight standardization of (C_out, C_in, k, k) filters, against
    ``backbones.WSConv2d`` (Course: :ref:`ch2-exercises`)."""
    from .backbones import WSConv2d

    conv = WSConv2d(3, 8, 3)
    with torch.no_grad():
        conv.weight.mul_(torch.linspace(0.1, 3.0, 8).view(8, 1, 1, 1)).add_(torch.linspace(-1, 1, 8).view(8, 1, 1, 1))
        want = conv.standardized_weight()
        try:
            got = torch.as_tensor(fn(conv.weight.detach().clone()))
        except Exception as error:  # noqa: BLE001 - report any failure of the learner's code
            return _verdict(False, "", f"your function raised {type(error).__name__}: {error}")
    if got.shape != want.shape:
        return _verdict(False, "", f"the output has shape {tuple(got.shape)}; it must keep the weight's "
                        f"{tuple(want.shape)}")
    ok = torch.allclose(got, want, atol=1e-4)
    return _verdict(ok, "Every filter has mean 0 and variance 1 over its C_in x k x k entries, whatever the "
                    "stored weights.",
                    f"largest difference from WSConv2d: {float((got - want).abs().max()):.3g}. Take the mean and the "
                    "biased variance over dimensions (1, 2, 3), one pair per output filter.")


def check_class_separation(fn: Callable[[torch.Tensor, torch.Tensor], float]) -> bool:
    """Ch. 2a exercise: a learner's class separation R^2 (Kornblith et al. 2021), against
    ``analysis.class_separation`` on random features with unequal classes (Course: :ref:`ch2-exercises`)."""
    from .analysis import class_separation

    gen = torch.Generator().manual_seed(0)
    labels = torch.cat([torch.full((n,), k) for k, n in enumerate([5, 9, 14])])
    features = torch.randn(len(labels), 6, generator=gen) + 2 * torch.randn(3, 6, generator=gen)[labels]
    want = class_separation(features, labels)
    return _compare_with_reference(fn, (features, labels), want, 1e-6,
                                   "Average the cosine distances within each class, then over all K x K pairs of "
                                   "classes (each class weighted equally, not each pair of images), and return "
                                   "1 - within / total.")


def check_zero_shot_by_hand(pred_a: int, pred_b: int, pred_d: int) -> bool:
    """Ch. 2b exercise: zero-shot classes of three 2-D image embeddings against class embeddings
    (1, 0), (0, 1), (-0.6, 0.8) (Course: :ref:`ch2-image-text-exercises`)."""
    from .text import zero_shot_predict

    classes = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.6, 0.8]])
    want = zero_shot_predict(torch.tensor([[2.0, 1.0], [-1.0, 1.0], [-3.0, -1.0]]), classes).tolist()
    got = [int(pred_a), int(pred_b), int(pred_d)]
    return _verdict(got == want, f"classes {want}: the dot products with the unit class vectors decide, since "
                    "normalising an image embedding does not change which class is largest.",
                    f"you gave {got}. Compute the three dot products of each image with the class vectors and take "
                    "the largest; the image's norm does not matter.")


def check_noise_threshold(r4: float, r8: float) -> bool:
    """Ch. 2b exercise: the symmetric label-noise rate up to which the true class stays the most
    likely label, (K - 1) / K, for K = 4 and K = 8 (Course: :ref:`ch2-image-text-exercises`)."""
    ok = abs(float(r4) - 0.75) < 1e-6 and abs(float(r8) - 0.875) < 1e-6
    return _verdict(ok, "r* = (K - 1)/K: 0.75 for four classes and 0.875 for eight.",
                    f"you gave {float(r4):.4g} and {float(r8):.4g}. Solve 1 - r > r / (K - 1) for r.")


def _learner_output(fn: Callable[..., object], args: tuple, shape: tuple[int, ...], what: str) -> torch.Tensor | None:
    """Return the learner's ``fn(*args)`` as a float64 tensor of ``shape``; print why and return None
    when it raises or has another shape (``what`` names the expected output in the hint)."""
    try:
        got = torch.as_tensor(fn(*args), dtype=torch.float64)
    except Exception as err:  # the learner's code may fail in any way; report it
        _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
        return None
    if tuple(got.shape) != tuple(shape):
        _verdict(False, "", f"return {what}, shape {tuple(shape)}; got {tuple(got.shape)}")
        return None
    return got


def check_gaussian_kl(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 3a exercise: a learner's per-dimension KL(N(mu, exp(logvar)) || N(0, 1)), against a
    Monte Carlo estimate of E_q[log q - log p] (Course: :ref:`ch3-exercises`)."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.tensor([[0.0, 1.5, -0.7], [2.0, 0.0, 0.3]], dtype=torch.float64)
    logvar = torch.tensor([[0.0, -1.0, 0.8], [0.5, -2.0, 0.0]], dtype=torch.float64)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(200_000, *mu.shape, generator=gen, dtype=torch.float64)
    log_q = -0.5 * ((z - mu) ** 2 / logvar.exp() + logvar + math.log(2 * math.pi))
    log_p = -0.5 * (z**2 + math.log(2 * math.pi))
    monte_carlo = (log_q - log_p).mean(0)
    got = _learner_output(fn, (mu, logvar), mu.shape, "one KL per dimension")
    if got is None:
        return False
    error = (got - monte_carlo).abs().max().item()
    return _verdict(error < 0.02, f"Your KL agrees with 200,000 Monte Carlo samples of E_q[log q - log p] "
                    f"(largest difference {error:.4f} nats).",
                    f"The largest difference from the Monte Carlo estimate is {error:.3f} nats. Expect "
                    "1/2 (mu^2 + sigma^2 - log sigma^2 - 1) with sigma^2 = exp(logvar).")


def check_principal_angles(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 3a exercise: a learner's principal angles in degrees, against
    ``analysis.principal_angles`` on bases of random and of mixed subspaces (Course: :ref:`ch3-exercises`)."""
    from .analysis import principal_angles

    gen = torch.Generator().manual_seed(0)
    a = torch.randn(10, 3, generator=gen, dtype=torch.float64)
    b = torch.randn(10, 4, generator=gen, dtype=torch.float64)
    mixed = a @ torch.randn(3, 3, generator=gen, dtype=torch.float64)  # another basis of a's span
    cases = [(a, b), (a, mixed), (b, a), (mixed, b)]  # the last: a re-mixed basis, the same angles to b
    try:
        got = [torch.as_tensor(fn(x, y), dtype=torch.float64).flatten() for x, y in cases]
    except Exception as err:  # the learner's code may fail in any way; report it
        return _verdict(False, "", f"Your function raised {type(err).__name__}: {err}")
    want = [principal_angles(x, y) for x, y in cases]
    ok = all(g.shape == w.shape and torch.allclose(g, w, atol=1e-4) for g, w in zip(got, want, strict=True))
    return _verdict(ok, "Your angles match the library's; a re-mixed basis of the same span gives angles of 0 to the "
                    "original and the same angles to another subspace.",
                    "Orthonormalise both bases (QR), take the singular values of Q_a^T Q_b as cosines, and return "
                    "arccos in degrees, smallest first: min(k, m) angles.")


def check_beta_limits(kl_large_beta: float, active_units_large_beta: int, variance_small_beta: float) -> bool:
    """Ch. 3a exercise: at the optimum, beta -> infinity gives KL 0 and no active units, beta -> 0
    posterior variances of 0 (Course: :ref:`ch3-exercises`)."""
    got = (float(kl_large_beta), int(active_units_large_beta), float(variance_small_beta))
    ok = got[0] == 0 and got[1] == 0 and got[2] == 0
    return _verdict(ok, "KL 0 and no active units as beta grows (q = p(z) for every image: posterior collapse); "
                    "variances 0 as beta shrinks (an autoencoder with a deterministic code).",
                    f"you gave {got}. Which q minimises the KL alone? Which noise level is best for the "
                    "reconstruction alone?")


def check_mean_reduction_beta(beta_equivalent: float) -> bool:
    """Ch. 3a exercise: the beta a summed loss would need to equal a beta-VAE with beta = 4 whose
    reconstruction is averaged over the pixel values of 32 x 32 RGB images (Course: :ref:`ch3-exercises`)."""
    want = 4 * 3 * 32 * 32
    return _verdict(abs(float(beta_equivalent) - want) < 1e-6,
                    f"beta' = D beta = 3,072 x 4 = {want:,}: dividing the whole loss by D leaves the optimum where it "
                    "is, so the mean form is the summed form with the KL weighted D times more.",
                    f"you gave {float(beta_equivalent):g}. Multiply the mean-reduced loss by D and read off the "
                    "KL's weight.")


def check_causal_mask(fn: Callable[[int, str], torch.Tensor]) -> bool:
    """Ch. 3b exercise: a learner's PixelCNN mask ``fn(kernel_size, mask_type)`` (k, k) of 0s and
    1s, against ``MaskedConv2d``'s for kernels 3, 5, 7 and both types (Course: :ref:`ch3b-exercises`)."""
    from .methods.pixelcnn import MaskedConv2d

    for k in (3, 5, 7):
        for mask_type in ("A", "B"):
            want = MaskedConv2d(1, 1, k, mask_type).mask[0, 0].double()
            got = _learner_output(fn, (k, mask_type), want.shape, f"a mask for kernel_size {k}")
            if got is None:
                return False
            if not torch.equal(got, want):
                centre = "excludes" if mask_type == "A" else "includes"
                wrong = int((got != want).sum())
                return _verdict(False, "", f"the type-{mask_type} mask of size {k} differs at {wrong} position(s). "
                                "Keep every row above the centre, the pixels left of it in its row, "
                                f"and the centre itself only for type B (type {mask_type} {centre} it).")
    return _verdict(True, "Your masks keep the rows above and the pixels to the left; type A also drops the centre, so "
                    "no output sees its own pixel.", "")


def check_optimal_discriminator(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> bool:
    """Ch. 3b exercise: a learner's optimal discriminator ``fn(p_data, p_model)`` on a grid of two
    1-D densities, against the maximiser of V(D, G) found numerically point by point
    (Course: :ref:`ch3b-exercises`)."""
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    p_data = torch.exp(-0.5 * (x - 1) ** 2) / math.sqrt(2 * math.pi)
    p_model = torch.exp(-0.5 * ((x + 0.5) / 1.5) ** 2) / (1.5 * math.sqrt(2 * math.pi))
    candidates = torch.linspace(1e-4, 1 - 1e-4, 20_001, dtype=torch.float64)[:, None]  # every D value per x
    integrand = p_data * torch.log(candidates) + p_model * torch.log(1 - candidates)
    want = candidates[integrand.argmax(0), 0]
    got = _learner_output(fn, (p_data, p_model), x.shape, "one value D(x) per grid point")
    if got is None:
        return False
    error = (got - want).abs().max().item()
    return _verdict(error < 1e-3, f"Your D matches the pointwise maximiser of p_data log D + p_model log(1 - D) "
                    f"(largest difference {error:.1e}); where the densities are equal it is 1/2.",
                    f"the largest difference from the pointwise maximiser is {error:.3f}. For each x, maximise "
                    "a log D + b log(1 - D) over D in (0, 1): set the derivative to 0.")


def check_bits_per_image(bits_per_image: float, class_share: float) -> bool:
    """Ch. 3b exercise: a model scoring 0.9 bits per dimension on 20 x 20 images of one palette
    index per pixel spends 360 bits per image; the class of 8 equally likely ones is at most
    log2(8) = 3 of them (Course: :ref:`ch3b-exercises`)."""
    want_bits, want_share = 0.9 * 20 * 20, math.log2(8) / (0.9 * 20 * 20)
    ok = abs(float(bits_per_image) - want_bits) < 0.5 and abs(float(class_share) - want_share) < 0.01 * want_share
    return _verdict(ok, f"{want_bits:.0f} bits per image, of which the class can explain at most log2(8) = 3 bits, "
                    f"{100 * want_share:.2f}% of the likelihood.",
                    f"you gave {float(bits_per_image):g} and {float(class_share):g}. A dimension here is one pixel "
                    "(one palette index); the class of 8 equally likely values holds log2(8) bits.")
