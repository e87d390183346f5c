"""Sphinx configuration for the skdim_dm documentation.

Build with ``bash docs/build.sh`` (HTML in ``docs/_build/html``, warnings as
errors). Nothing is fetched from the network at build time: there is no
intersphinx, and the theme's assets are bundled with it.
"""

import inspect
import os
import re
import sys
import warnings
from pathlib import Path

from numpydoc.xref import DEFAULT_LINKS
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx_gallery.sorting import FunctionSortKey

import skdim_dm
import skdim_dm.metrics

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from gallery_order import example_order  # noqa: E402

# -- Project -----------------------------------------------------------------
project = "skdim_dm"
author = "skdim_dm developers"
copyright = "skdim_dm developers, BSD-3-Clause"
release = skdim_dm.__version__
version = ".".join(release.split(".")[:2])

# -- General -----------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
default_role = "literal"  # `x` in a docstring is code, not a cross-reference

autosummary_generate = True
autodoc_default_options = {"members": True, "inherited-members": False}
autodoc_typehints = "none"  # numpydoc's "Parameters" sections carry the types
# numpydoc lists methods through our autosummary templates, not its own tables.
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Parameter types are parsed as types, so "ndarray of shape (n_components_,)" is
# text, not a reference to a target named n_components.
numpydoc_xref_param_type = True
numpydoc_xref_ignore = "all"
# numpydoc's default aliases point into numpy's and Python's docs, which would need
# intersphinx (a network fetch): these names stay plain words here.
numpydoc_xref_aliases = {name: f":obj:`{name}`" for name in DEFAULT_LINKS}

# -- Gallery -----------------------------------------------------------------
# Every examples/plot_*.py runs at build time; matplotlib figures are scraped
# from the open figures, so the examples need not save any file.
sphinx_gallery_conf = {
    "examples_dirs": [str(HERE.parent / "examples")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",
    # Read in this order: first steps, then targets, model selection, uses.
    "within_subsection_order": FunctionSortKey(example_order, "example_order"),
    "doc_module": ("skdim_dm",),
    # Beside the autosummary pages, so their templates can include the files.
    "backreferences_dir": "generated",
    "abort_on_example_error": True,
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1,
    # Its timing pages load scripts from CDNs; the build log shows the times.
    "write_computation_times": False,
    "matplotlib_animations": False,
    "image_scrapers": ("matplotlib",),
}
# The examples use matplotlib's non-interactive backend when run here.
os.environ.setdefault("MPLBACKEND", "Agg")
warnings.filterwarnings(
    "ignore",
    category=UserWarning,
    message="(?s).*is non-interactive, and thus cannot be shown",
)

# -- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"skdim_dm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_show_sourcelink = False
html_copy_source = False


# -- Every public name has a page ------------------------------------------------
def _documented_names():
    """Names with a page: under ``autosummary`` in api.rst, or ``autodata`` pages."""
    text = (HERE / "api.rst").read_text(encoding="utf-8")
    names, module, in_summary = set(), "skdim_dm", False
    for page in sorted((HERE / "api_data").glob("*.rst")):
        m = re.search(r"^\.\. currentmodule:: (\S+)$", page.read_text(), re.M)
        d = re.search(r"^\.\. autodata:: (\S+)$", page.read_text(), re.M)
        if m and d:
            names.add(f"{m.group(1)}.{d.group(1)}")
    for line in text.splitlines():
        m = re.match(r"\.\. currentmodule:: (\S+)", line)
        if m:
            module = m.group(1)
            continue
        if line.startswith(".. autosummary::"):
            in_summary = True
            continue
        if in_summary:
            stripped = line.strip()
            if not stripped or stripped.startswith(":"):
                continue
            if not line.startswith("   "):
                in_summary = False
                continue
            names.add(f"{module}.{stripped}")
    return names


def _check_api_reference(app):
    """Warn (an error under ``-W``) when a public name has no reference page."""
    documented = _documented_names()
    objects = {}
    for qualname in documented:
        module, _, name = qualname.rpartition(".")
        objects[qualname] = getattr(sys.modules[module], name, None)
    missing = []
    for module in (skdim_dm, skdim_dm.metrics):
        for name in module.__all__:
            if name.startswith("__"):
                continue
            qualname = f"{module.__name__}.{name}"
            obj = getattr(module, name)
            # A re-export counts as documented where its other name has a page.
            if qualname not in documented and not any(
                o is obj for o in objects.values()
            ):
                missing.append(qualname)
    if missing:
        logging.getLogger(__name__).warning(
            "public names without a page in docs/api.rst: %s", ", ".join(missing)
        )


_SHAPE_NAME = re.compile(r"(?<![`\w])([A-Za-z]\w*?)_(?=[,)])")


def _escape_shape_attributes(app, what, name, obj, options, lines):
    """Keep ``(n_components_,)`` in a shape as text, not a reference target.

    reST reads a word ending in ``_`` as a link to a target of that name; in a
    shape such as ``ndarray of shape (n_features_in_,)`` it is a fitted attribute.
    """
    for i, line in enumerate(lines):
        if "shape (" in line:
            lines[i] = _SHAPE_NAME.sub(r"\1\\_", line)


def _data_doc_from_source(app, what, name, obj, options, lines):
    """Document a re-exported module-level value by its comment in the source.

    autodoc finds a ``#:`` comment only in the module named in the directive
    (``skdim_dm.metrics``), not where the value is assigned, and would otherwise
    show the docstring of the value's type. Use the ``#:`` comment, else the
    ``#`` comment block, just above the assignment in the defining module.
    """
    if what != "data" or not name.startswith("skdim_dm."):
        return
    attr = name.rpartition(".")[2]
    for modname in sorted(sys.modules):
        module = sys.modules[modname]
        if (
            not modname.startswith("skdim_dm.")
            or getattr(module, attr, None) is not obj
        ):
            continue
        docs = ModuleAnalyzer.for_module(modname).find_attr_docs().get(("", attr))
        if not docs:
            source = inspect.getsource(module).splitlines()
            at = next(
                (
                    i
                    for i, line in enumerate(source)
                    if re.match(rf"{attr}\b\s*[:=]", line)
                ),
                None,
            )
            docs, i = [], (at or 0) - 1
            while at is not None and i >= 0 and source[i].startswith("#"):
                docs.insert(0, source[i].lstrip("#").strip())
                i -= 1
        if docs:
            lines[:] = list(docs)
            return


def setup(app):
    app.connect("builder-inited", _check_api_reference)
    app.connect("autodoc-process-docstring", _escape_shape_attributes)
    app.connect("autodoc-process-docstring", _data_doc_from_source)
