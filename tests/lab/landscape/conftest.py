"""Trained restarts shared by the lab tests (each configuration is trained once per session)."""

import pytest

from sgdlab import TrainConfig
from sgdlab.lab import Problem, run_restarts

#: L2-regularised multinomial logistic regression trained by full-batch gradient descent:
#: strictly convex, and the step 1.0 is below 2 / (largest curvature), so runs converge.
CONVEX = dict(model="softmax", l2=0.01, lr=1.0, epochs=None, max_steps=600, eval_every="end")
#: A one-hidden-layer ReLU network, mini-batch SGD.
MLP = dict(model="mlp", hidden=(32,), batch_size=32, lr=0.1, epochs=25, eval_every="end")


@pytest.fixture(scope="session")
def convex_problem(digits_ds):
    p = Problem.from_data(digits_ds, TrainConfig(batch_size=1438, **CONVEX))
    assert p.train.n == 1438  # full batch
    return p


@pytest.fixture(scope="session")
def convex_restarts(convex_problem):
    return run_restarts(convex_problem, seeds=range(5))


@pytest.fixture(scope="session")
def mlp_problem(digits_ds):
    return Problem.from_data(digits_ds, TrainConfig(**MLP))


@pytest.fixture(scope="session")
def mlp_restarts(mlp_problem):
    # Three seeds: the verdict needs pairs, and each restart costs a compilation.
    return run_restarts(mlp_problem, seeds=range(3))
