"""Command line: ``python -m skdim_dm {demo,fit,transform,report}`` (or ``skdim-dm``).

``demo`` needs no arguments: it fits 2-D Gaussian latents on scikit-learn's bundled
8x8 digits, prints the mutual information, the capacity and a distribution-matching
report, and draws the latents over the prior's contours with a QQ plot of
``||z||^2`` against ``chi2(d)``. ``fit``, ``transform`` and ``report`` work on
``.npy`` or ``.csv`` files (one row per sample) and models saved with
:meth:`NoiseInjectedInfoMax.save`.

The pieces: arguments and the table of model options in :mod:`skdim_dm._cli`, the
commands in :mod:`skdim_dm._cli_commands`, file I/O in :mod:`skdim_dm._io`, the
figure in :mod:`skdim_dm.plotting`.
"""

from __future__ import annotations

import logging
import os
import sys

from ._cli import CLIError, build_parser, parse_prior

__all__ = ["main", "build_parser", "parse_prior"]


def main(argv=None) -> int:
    """Entry point of ``python -m skdim_dm`` and the ``skdim-dm`` script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else 30)
    if getattr(args, "threads", None):
        import torch

        torch.set_num_threads(args.threads)
    from ._cli_commands import COMMANDS

    try:
        code = COMMANDS[args.command](args)
        sys.stdout.flush()
        return code
    except CLIError as exc:
        print(f"skdim-dm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # The reader went away (``report ... | head``): stop quietly with the
        # status of a Unix tool ended by SIGPIPE (128 + 13). Point stdout at
        # devnull so that the flush at interpreter exit cannot fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # stdout without a file descriptor
            pass
        return 141


if __name__ == "__main__":
    sys.exit(main())
