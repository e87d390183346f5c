"""Exploration: a small strided ConvNet backbone (user module), input noise 0.5,
adaptive critic, C = 4.61, 6-minute budget on MNIST. Usage:

    OMP_NUM_THREADS=2 python benchmarks/explore_small_conv.py [--mnist PATH]

The MNIST path may also come from the ``SKDIM_DM_MNIST`` environment variable.
Prints one line per epoch and a summary; writes ``--out`` (JSON, default
``benchmarks/results/small_conv.json``).
"""

import argparse
import time

import torch
from _common import RESULTS, load_mnist, setup_threads, write_json
from sklearn.neural_network import MLPClassifier
from torch import nn

from skdim_dm import NoiseInjectedInfoMax, capacity_to_noise_level
from skdim_dm.metrics import knn_kl_divergence, normality_bootstrap


class SmallConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.LeakyReLU(0.2),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, stride=2, padding=1),
            nn.BatchNorm2d(64),
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(64 * 16, 128),
            nn.LeakyReLU(0.2),
            nn.Linear(128, 2),
        )

    def forward(self, x):
        return self.net(x.reshape(-1, 1, 28, 28))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=None, help="path to mnist.npz")
    parser.add_argument("--seconds", type=float, default=360.0, help="time budget")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=str(RESULTS / "small_conv.json"))
    args = parser.parse_args(argv)
    setup_threads(args.threads)
    X, y, Xt, yt = load_mnist(args.mnist)
    t0 = time.time()

    def budget(epoch, logs):
        print(epoch, round(time.time() - t0, 1), round(logs["mi"], 3), flush=True)
        return time.time() - t0 > args.seconds

    with torch.random.fork_rng():
        torch.manual_seed(0)
        net = SmallConv()
    rows = []
    for inoise in [0.5]:
        t0 = time.time()
        est = NoiseInjectedInfoMax(
            encoder=net,
            noise_level=capacity_to_noise_level(4.61, 2),
            critic="gaussian-adaptive",
            input_noise=inoise,
            standardize="global",
            max_epochs=100,
            callbacks=[budget],
            random_state=0,
        ).fit(X)
        ft = time.time() - t0
        Zt = est.transform(Xt)
        acc = (
            MLPClassifier(alpha=1.0, max_iter=1000, random_state=0)
            .fit(est.transform(X), y)
            .score(Zt, yt)
        )
        row = dict(
            input_noise=inoise,
            fit_s=round(ft, 1),
            epochs=est.n_iter_,
            mi=round(est.mutual_info_, 3),
            hz=round(normality_bootstrap(Zt, random_state=0)["henze_zirkler"], 3),
            kl=round(knn_kl_divergence(Zt), 3),
            mlp=acc,
        )
        print(row, flush=True)
        rows.append(row)
    result = {"benchmark": "small_conv", "seconds": args.seconds, "fits": rows}
    print(f"wrote {write_json(args.out, result)}")


if __name__ == "__main__":
    main()
