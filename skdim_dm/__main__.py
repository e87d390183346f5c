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


class _StdoutGuard:
    """``sys.stdout`` while a command runs: a reader that goes away (``fit ... |
    head -1``) must not stop the command before it writes the files asked for.

    The first write or flush that fails with ``BrokenPipeError`` points the
    stream's file descriptor at ``os.devnull`` (so the flush at interpreter exit
    cannot fail again) and everything printed after it is discarded; the command
    runs to its end and :func:`main` then returns 141, the status of a Unix tool
    ended by SIGPIPE (128 + 13).
    """

    def __init__(self, stream):
        self._stream = stream
        self.broken = False

    def _guard(self, action, *args):
        if self.broken:
            return None
        try:
            return action(*args)
        except BrokenPipeError:
            self.broken = True
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, self._stream.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):  # no file descriptor
                pass
            return None

    def write(self, text):
        self._guard(self._stream.write, text)
        return len(text)

    def flush(self):
        self._guard(self._stream.flush)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv=None) -> int:
    """Entry point of ``python -m skdim_dm`` and the ``skdim-dm`` script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else 30)
    from ._cli_commands import COMMANDS

    stdout = sys.stdout = _StdoutGuard(sys.stdout)
    try:
        code = COMMANDS[args.command](args)
        stdout.flush()
    except CLIError as exc:
        stdout.flush()  # what was printed comes before the error
        print(f"skdim-dm {args.command}: error: {exc}", file=sys.stderr)
        code = 2
    finally:
        sys.stdout = stdout._stream
    # The reader of stdout went away (``report ... | head``): the command still
    # ran to its end (files written); exit as a tool stopped by SIGPIPE would.
    return 141 if stdout.broken and code == 0 else code


if __name__ == "__main__":
    sys.exit(main())
