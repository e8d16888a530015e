"""Sphinx configuration of stefast's documentation.

Build: ``sphinx-build -W -b html docs docs/_build/html`` with the ``docs``
extra installed (``python -m pip install ".[docs]"``). Two pages are made at
build time, before Sphinx reads the sources, into ``docs/_generated/``:

* the results of ``stefast reproduce`` (run here, about 15 s), and
* the benchmark tables, rendered by ``stefast.benchreport`` from the saved
  ``docs/_data/bench.json`` (a benchmark run is far too slow for a docs build).

The gallery (``examples/gallery``) runs every example at build time.
"""

import os
import subprocess
import sys
from pathlib import Path

import stefast

DOCS = Path(__file__).resolve().parent
GENERATED = DOCS / "_generated"

project = "stefast"
author = "the stefast developers"
copyright = "the stefast developers"
release = version = stefast.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext"}
exclude_patterns = ["_build", "_generated/**/*.md", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

# ---- API reference -----------------------------------------------------------
autosummary_generate = True
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# every public docstring is checked by numpydoc; these checks are left out on
# purpose: examples are required only on functions (GL08/EX01 on NamedTuple
# fields would demand prose for tuple accessors), and "See Also" is optional
numpydoc_validation_checks = {"all", "ES01", "EX01", "SA01", "SS05", "SS06", "GL08", "RT02",
                              "PR09", "RT05", "SS03", "GL01", "GL02", "PR06", "SS02"}
numpydoc_validation_exclude = {r"\.__init__$", r"\._replace$", r"\._make$", r"\._asdict$",
                               r"\.count$", r"\.index$"}

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
# the build must not need the network: intersphinx inventories are optional
intersphinx_disabled_reftypes = ["*"]
intersphinx_timeout = 5

# ---- gallery -----------------------------------------------------------------
sphinx_gallery_conf = {
    "examples_dirs": str(DOCS.parent / "examples" / "gallery"),
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
    "only_warn_on_example_error": False,
}

# ---- HTML ----------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"stefast {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path = []

myst_enable_extensions = []
suppress_warnings = ["myst.header"]  # generated reports start below the page title


# ---- pages generated before reading ---------------------------------------------

def _reproduce_page():
    """Run ``stefast reproduce`` into _generated/reproduce (report.md + figures)."""
    out = GENERATED / "reproduce"
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-c", "import sys; from stefast.cli import main; sys.exit(main())",
           "reproduce", "--out", str(out)]
    env = dict(os.environ, MPLBACKEND="Agg")
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)


def _bench_page():
    """Render docs/_data/bench.json into _generated/bench.md with stefast.benchreport."""
    from stefast import benchreport

    GENERATED.mkdir(parents=True, exist_ok=True)
    (GENERATED / "bench.md").write_text(benchreport.render_saved(DOCS / "_data" / "bench.json"))


def setup(app):
    _bench_page()
    _reproduce_page()
