from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from sslcourse import exercises


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


def test_mig_permutation_right_and_wrong():
    assert exercises.check_mig_permutation(1.0)
    assert not exercises.check_mig_permutation(0.2)


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
