"""Data-parallel training on the CPU: 2 processes over gloo, as torchrun runs them.

The tests launch this file as a script, once per rank, with the variables that
``torchrun`` sets (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``, ``MASTER_PORT``);
each rank writes what it computed and the tests compare it with one process.
One launch serves the fast tests (about 10 s: two interpreters importing torch).
"""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from skdim_dm import NoiseInjectedInfoMax, build_networks
from skdim_dm._core.distributed import _OWNER_ENV, launched_distributed
from skdim_dm._core.views import NeighborViews, make_views

WORLD = 2
SEED = 7
#: One global batch: 25 rows, shared 12/13 between the ranks, whose halves come
#: from different distributions, so per-rank statistics would show.
N_BATCH, N_FEATURES = 25, 6
GRAD_CONFIGS = {
    "default": dict(),
    "whiten_sliced_student": dict(
        n_components=3, whiten=True, objective="sliced", critic="student"
    ),
    "adaptive": dict(critic="gaussian-adaptive"),
    "uniform": dict(base="uniform"),
    "separable": dict(critic="separable"),
    "hidden_batchnorm": dict(encoder="bn-backbone"),
    "hidden_batchnorm2d": dict(encoder="bn2d-backbone"),
}
FIT_CONFIGS = {
    "default": dict(),
    "neighbors_early_stopping": dict(
        augmentation="neighbors", n_neighbors=4, early_stopping=True, n_iter_no_change=3
    ),
    "whiten_sliced": dict(n_components=3, whiten=True, objective="sliced"),
}
FIT_PARAMS = dict(hidden_layer_sizes=(16,), batch_size=64, max_steps=12, random_state=0)


# ----------------------------------------------------------------- the data
def asymmetric_batch(dtype=torch.float32):
    """Two views of one global batch whose two rank shares differ in law."""
    rng = np.random.default_rng(SEED)
    lo = rng.normal(0.0, 1.0, (12, N_FEATURES))
    hi = rng.normal(3.0, 0.3, (N_BATCH - 12, N_FEATURES)) * np.arange(1, 7)
    a = np.concatenate([lo, hi])
    b = a + rng.normal(0.0, 0.2, a.shape)
    return (torch.as_tensor(v, dtype=dtype) for v in (a, b))


def asymmetric_data(n=300):
    rng = np.random.default_rng(SEED + 1)
    first = rng.normal(0.0, 1.0, (n // 2, N_FEATURES))
    second = rng.gamma(2.0, 1.5, (n - n // 2, N_FEATURES)) + 4.0
    return np.concatenate([first, second])


def bn_backbone():
    """A user backbone with a hidden BatchNorm layer, built alike everywhere."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return torch.nn.Sequential(
            torch.nn.Linear(N_FEATURES, 16),
            torch.nn.BatchNorm1d(16),
            torch.nn.LeakyReLU(0.2),
            torch.nn.Linear(16, 2),
        )


def bn2d_backbone():
    """A convolutional backbone (as the ConvNet's blocks) on 1 x 2 x 3 images."""
    with torch.random.fork_rng():
        torch.manual_seed(SEED)
        return torch.nn.Sequential(
            torch.nn.Unflatten(1, (1, 2, 3)),
            torch.nn.Conv2d(1, 4, 2, padding=1, bias=False),
            torch.nn.BatchNorm2d(4),
            torch.nn.LeakyReLU(0.2),
            torch.nn.Flatten(),
            torch.nn.Linear(48, 2),
        )


def networks(config, dtype=torch.float32):
    kw = {"noise_level": 0.6, "hidden_layer_sizes": (16,), **config}
    if kw.get("encoder") == "bn-backbone":
        kw["encoder"] = bn_backbone()
    if kw.get("encoder") == "bn2d-backbone":
        kw["encoder"] = bn2d_backbone()
    nets = build_networks(N_FEATURES, kw.pop("n_components", 2), seed=SEED, **kw)
    nets.encoder.to(dtype)
    nets.critic.to(dtype)
    return nets


def step_grads(nets, view_a, view_b, shard=None):
    """Gradients of one step: one process's on the global batch, or with a
    shard, the sum over ranks of each rank's on its share (what training uses)."""
    from skdim_dm._core.objectives import Loss
    from skdim_dm._core.training import batch_latents

    encoder, critic, channel = nets
    encoder.train()
    critic.train()
    shared = torch.Generator().manual_seed(SEED)  # the same state on every rank
    params = [p for m in (encoder, critic) for p in m.parameters()]
    bound = Loss().bound  # the critic built for the config computes the bound
    if shard is None:
        latents = batch_latents(encoder, view_a, view_b)
        mi = bound(critic, channel, latents, shared)
        (-mi).backward()
    else:
        attached = shard.attach(encoder)
        n = view_a.shape[0]
        va, vb = shard.local(view_a), shard.local(view_b)
        mi = bound(critic, channel, batch_latents(encoder, va, vb, shard, n), shared)
        (-mi).backward()
        shard.reduce_gradients(encoder, critic)
        shard.detach(attached)
    return float(mi.detach()), [p.grad.clone() for p in params]


# --------------------------------------------------------------- the worker
def _worker(out: Path) -> None:
    """One rank: every scenario, results pickled to ``out/rank{r}.pkl``."""
    from skdim_dm._core.distributed import resolve_shard

    torch.set_num_threads(1)
    assert launched_distributed()
    shard = resolve_shard("auto", torch.device("cpu"))
    results = {"rank": shard.rank, "grads": {}, "fits": {}}
    for dtype in (torch.float32, torch.float64):
        view_a, view_b = asymmetric_batch(dtype)
        for name, config in GRAD_CONFIGS.items():
            nets = networks(config, dtype)
            results["grads"][name, dtype] = step_grads(nets, view_a, view_b, shard)
    X = asymmetric_data()
    for name, config in FIT_CONFIGS.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)  # replicas that differ
            est = NoiseInjectedInfoMax(**FIT_PARAMS, **config).fit(X)
        results["fits"][name] = {
            "state": {k: v.clone() for k, v in est.encoder_.state_dict().items()},
            "Z": est.transform(X),
            "mi": est.mutual_info_,
            "history": [
                {k: v for k, v in h.items() if k != "time"} for h in est.history_
            ],
            "n_steps": est.n_steps_,
        }
    # partial_fit on a stream of chunks, every call data-parallel: count the
    # gradient reductions (one per step when the ranks train together)
    from skdim_dm._core.distributed import Shard

    reduced, reduce = [], Shard.reduce_gradients
    Shard.reduce_gradients = lambda self, *a: (reduced.append(1), reduce(self, *a))
    est = NoiseInjectedInfoMax(hidden_layer_sizes=(16,), batch_size=32, random_state=0)
    try:
        for chunk in np.array_split(X, 3):
            with warnings.catch_warnings():
                warnings.simplefilter("error", RuntimeWarning)
                est.partial_fit(chunk)
    finally:
        Shard.reduce_gradients = reduce
    results["partial"] = {
        "state": {k: v.clone() for k, v in est.encoder_.state_dict().items()},
        "Z": est.transform(X),
        "n_steps": est.n_steps_,
        "n_reduced": len(reduced),
        "n_seen": est.n_samples_seen_,
        "mean": est.mean_,
    }
    # a memory map, read in row chunks by each rank
    path = out / "X.npy"
    if shard.rank == 0:
        np.save(path, X.astype(np.float32))
    shard.all_reduce_(torch.zeros(1))  # a barrier: the file is written
    est = NoiseInjectedInfoMax(**FIT_PARAMS).fit(np.load(path, mmap_mode="r"))
    results["memmap_Z"] = est.transform(X.astype(np.float32))
    # the neighbor table, each rank searching its share of the queries
    Xt = torch.as_tensor(asymmetric_data(), dtype=torch.float32)
    views = make_views("neighbors", 0.2, n_neighbors=4)
    gen = torch.Generator().manual_seed(SEED)
    views.fit(Xt[:250], Xt[250:], gen, shard=shard)
    results["neighbors"] = (views.neighbors, views._val_partners)
    # different data on one rank: a clear error on every rank, no hang
    try:
        NoiseInjectedInfoMax(**FIT_PARAMS).fit(X[: 200 + 50 * shard.rank])
    except ValueError as exc:
        results["mismatch"] = str(exc)
    (out / f"rank{shard.rank}.pkl").write_bytes(pickle.dumps(results))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(out: Path, timeout: float = 240.0) -> list[dict]:
    """Run :func:`_worker` as ``WORLD`` processes, as torchrun would."""
    port = _free_port()
    procs = []
    for rank in range(WORLD):
        env = {k: v for k, v in os.environ.items() if k != _OWNER_ENV}
        # The ranks import the package under test (this checkout's), not
        # whichever one is installed: the script's own folder is tests/.
        root = str(Path(__file__).resolve().parents[1])
        path = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = root if not path else os.pathsep.join([root, path])
        env.update(
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(WORLD),
            LOCAL_WORLD_SIZE=str(WORLD),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, str(out)],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout)[0])
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, log in zip(procs, logs):
        assert p.returncode == 0, f"a rank failed:\n{log[-4000:]}"
    return [pickle.loads((out / f"rank{r}.pkl").read_bytes()) for r in range(WORLD)]


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("ranks"))


# ---------------------------------------------------------------- the tests
@pytest.mark.parametrize(
    "dtype, tol",
    # float64 shows the arithmetic is the same (no missing term or scale);
    # float32 that rounding stays rounding.
    [(torch.float64, 1e-10), (torch.float32, 1e-5)],
    ids=["float64", "float32"],
)
@pytest.mark.parametrize("config", list(GRAD_CONFIGS))
def test_two_ranks_take_the_gradient_of_one_process(ranks, config, dtype, tol):
    view_a, view_b = asymmetric_batch(dtype)
    mi, grads = step_grads(networks(GRAD_CONFIGS[config], dtype), view_a, view_b)
    for result in ranks:
        rank_mi, rank_grads = result["grads"][config, dtype]
        assert rank_mi == pytest.approx(mi, rel=tol, abs=tol)
        # Relative to the largest gradient: a bias that normalization cancels
        # has a gradient of pure rounding.
        scale = max(float(g.abs().max()) for g in grads)
        for g, h in zip(grads, rank_grads):
            assert float((g - h).abs().max()) <= tol * scale


@pytest.mark.parametrize("config", list(FIT_CONFIGS))
def test_every_rank_ends_with_the_same_model(ranks, config):
    a, b = (r["fits"][config] for r in ranks)
    assert a["state"].keys() == b["state"].keys()
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    assert np.array_equal(a["Z"], b["Z"])
    assert a["mi"] == b["mi"] and a["history"] == b["history"]
    assert a["n_steps"] == FIT_PARAMS["max_steps"] or config.startswith("neighbors")


def test_partial_fit_across_ranks_keeps_the_replicas_identical(ranks):
    a, b = (r["partial"] for r in ranks)
    for k in a["state"]:
        assert torch.equal(a["state"][k], b["state"][k]), k
    assert np.array_equal(a["Z"], b["Z"])
    # The same stream in one process: the same steps and running statistics.
    X = asymmetric_data()
    one = NoiseInjectedInfoMax(hidden_layer_sizes=(16,), batch_size=32, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tiny fits: ConvergenceWarning
        for chunk in np.array_split(X, 3):
            one.partial_fit(chunk)
    assert a["n_steps"] == one.n_steps_ and a["n_seen"] == one.n_samples_seen_ == 300
    assert np.allclose(a["mean"], one.mean_)
    assert np.allclose(a["mean"], X.mean(axis=0))
    # Every step of every call reduced its gradients over the ranks.
    assert a["n_reduced"] == b["n_reduced"] == a["n_steps"] == 9


def test_a_data_parallel_fit_learns_like_one_process(ranks):
    X = asymmetric_data()
    one = NoiseInjectedInfoMax(**FIT_PARAMS).fit(X)
    two = ranks[0]["fits"]["default"]
    # Different noise draws (per rank) but the same batches and objective.
    assert abs(two["mi"] - one.mutual_info_) < 0.25
    assert two["n_steps"] == one.n_steps_


def test_a_memmap_fits_across_ranks_as_the_array_does(ranks):
    for r in ranks:
        assert np.allclose(r["memmap_Z"], ranks[0]["fits"]["default"]["Z"], atol=1e-5)


def test_the_neighbor_table_is_shared_out_and_gathered(ranks):
    Xt = torch.as_tensor(asymmetric_data(), dtype=torch.float32)
    views = make_views("neighbors", 0.2, n_neighbors=4)
    assert isinstance(views, NeighborViews)
    views.fit(Xt[:250], Xt[250:], torch.Generator().manual_seed(SEED))
    for r in ranks:
        table, partners = r["neighbors"]
        assert torch.equal(table, views.neighbors)
        assert torch.equal(partners, views._val_partners)


def test_different_data_on_one_rank_fails_on_every_rank(ranks):
    for r in ranks:
        assert "same data" in r["mismatch"]


# ------------------------------------------------------- single-process switch
# (tiny fits whose MI estimate is poor: their ConvergenceWarning is not the point)
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_without_a_launch_fits_run_in_one_process(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not launched_distributed()
    X = asymmetric_data(120)
    est = NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_steps=2, random_state=0)
    est.fit(X)
    with pytest.raises(ValueError, match="torchrun"):
        est.set_params(distributed=True).fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_distributed_false_ignores_the_launch_variables(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv(_OWNER_ENV, raising=False)
    assert launched_distributed()
    X = asymmetric_data(120)
    kw = dict(hidden_layer_sizes=(8,), max_steps=2, random_state=0)
    alone = NoiseInjectedInfoMax(distributed=False, **kw).fit(X)
    monkeypatch.delenv("WORLD_SIZE")
    ref = NoiseInjectedInfoMax(**kw).fit(X)
    assert np.array_equal(alone.transform(X), ref.transform(X))


def test_workers_started_by_a_rank_do_not_join_its_group(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv(_OWNER_ENV, str(os.getpid() + 1))  # a parent set it
    assert not launched_distributed()


def test_launch_variables_without_an_address_give_a_clear_error(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.delenv("MASTER_ADDR", raising=False)
    monkeypatch.delenv(_OWNER_ENV, raising=False)
    est = NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_steps=2)
    with pytest.raises(ValueError, match="MASTER_ADDR"):
        est.fit(asymmetric_data(60))
    assert not hasattr(est, "encoder_")


@pytest.mark.parametrize(
    "variables, message",
    [
        (dict(RANK="5"), r"RANK=5 must be in \[0, WORLD_SIZE=2\)"),
        (dict(RANK="-1"), r"RANK=-1 must be in"),
        (dict(RANK="one"), r"RANK='one' is not an integer"),
        (dict(RANK="1", LOCAL_RANK="7"), r"LOCAL_RANK=7 must be in"),
        (dict(RANK="1", MASTER_PORT="70000"), r"MASTER_PORT=70000 is not a TCP port"),
    ],
    ids=["rank-too-large", "negative-rank", "rank-not-a-number", "local-rank", "port"],
)
def test_inconsistent_launch_variables_are_refused_before_joining_a_group(
    monkeypatch, variables, message
):
    # Before the check, RANK=5 of 2 waited in init_process_group for peers
    # that never come; here joining a group at all fails the test.
    import torch.distributed as dist

    def no_group(*args, **kwargs):
        raise AssertionError("init_process_group was called")

    monkeypatch.setattr(dist, "init_process_group", no_group)
    monkeypatch.delenv(_OWNER_ENV, raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    env = dict(WORLD_SIZE="2", MASTER_ADDR="127.0.0.1", MASTER_PORT="29541")
    for name, value in {**env, **variables}.items():
        monkeypatch.setenv(name, value)
    est = NoiseInjectedInfoMax(hidden_layer_sizes=(8,), max_steps=2)
    with pytest.raises(ValueError, match=message):
        est.fit(asymmetric_data(60))
    assert not hasattr(est, "encoder_")


def test_distributed_is_validated():
    with pytest.raises(ValueError, match="distributed"):
        NoiseInjectedInfoMax(distributed="yes").fit(asymmetric_data(60))


if __name__ == "__main__":
    _worker(Path(sys.argv[1]))
