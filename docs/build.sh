#!/usr/bin/env bash
# Build the HTML documentation into docs/_build/html, warnings as errors.
# Needs the docs extra: pip install -e ".[docs]". The gallery runs every example
# on one thread (small networks are fastest that way) and on data that ships with
# scikit-learn: nothing is downloaded.
set -euo pipefail
cd "$(dirname "$0")"

export OMP_NUM_THREADS=1 MPLBACKEND=Agg
# The site is built from bundled data, with the examples' full settings.
unset SKDIM_DM_MNIST SKDIM_DM_EXAMPLE_FAST SKDIM_DM_EXAMPLE_OUT

# sphinx-gallery runs each example inside examples/. Anything an example writes
# there is removed after the build (only files that were not there before).
untracked() { (cd ../examples && find . -maxdepth 1 -type f | sort); }
before=$(untracked)

# Generated pages are rebuilt from scratch, so a removed name leaves no stale page.
rm -rf _build generated auto_examples sg_execution_times.rst
status=0
python -m sphinx -b html -W --keep-going . _build/html "$@" || status=$?

comm -13 <(echo "$before") <(untracked) | while read -r f; do
    echo "docs: an example wrote examples/${f#./}; removed" >&2
    rm -f "../examples/${f#./}"
done
[ "$status" -eq 0 ] && echo "docs: open docs/_build/html/index.html"
exit "$status"
