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
import re
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
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/**/*.md", "auto_examples/*.ipynb",
                    "auto_examples/*.py", "auto_examples/*.zip", "auto_examples/*.json",
                    "auto_examples/*.md5", "auto_examples/*.codeobj.json"]
templates_path = ["_templates"]

# ---- API reference -----------------------------------------------------------
autosummary_generate = True
# stefast.torch needs the optional torch; without it the reference is built
# from a stand-in (its pages are the docstrings, which need no torch)
try:
    import torch  # noqa: F401
except ImportError:
    autodoc_mock_imports = ["torch"]
autodoc_default_options = {"members": False}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# numpydoc validates every public docstring (warnings are errors): parameters
# documented in order with types and descriptions, returns described, a
# summary line, known sections in order. Result classes document their
# fields under "Attributes", which stands in for "Parameters". (That every
# public function has a runnable example is tests/test_docstrings.py's job.)
numpydoc_validation_checks = {"PR01", "PR02", "PR03", "PR04", "PR06", "PR07", "PR10",
                              "RT01", "RT03", "SS01", "GL06", "GL07"}
numpydoc_validation_overrides = {"PR01": [r"\n\s*Attributes\n\s*-{3,}"]}
numpydoc_validation_exclude = {r"\.__init__$", r"\.count$", r"\.index$"}

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
    # run outside the source tree: `python -c` puts its working directory first
    # on sys.path, and there the uncompiled stefast/ would shadow the installed one
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, cwd=out)
    # the report names its figures relative to itself; the page that includes
    # it sits two directories up
    report = out / "report.md"
    text = re.sub(r"\]\(([\w.-]+\.png)\)", r"](_generated/reproduce/\1)", report.read_text())
    report.write_text(text)


def _bench_page():
    """Render docs/_data/bench.json into _generated/bench.md and the report's
    two plots with stefast.benchreport."""
    import json

    from stefast import benchreport

    GENERATED.mkdir(parents=True, exist_ok=True)
    saved = DOCS / "_data" / "bench.json"
    (GENERATED / "bench.md").write_text(benchreport.render_saved(saved))
    benchreport.write_plots(json.loads(saved.read_text()), GENERATED)


def _check_api_page():
    """Fail the build if docs/api.rst leaves out a name stefast exports."""
    text = (DOCS / "api.rst").read_text()
    listed = set(re.findall(r"^   (\w+)$", text, re.M)) | set(re.findall(r"^\.\. data:: (\w+)", text, re.M))
    missing = sorted(set(stefast.__all__) - listed)
    if missing:
        raise RuntimeError(f"docs/api.rst does not list {', '.join(missing)} (stefast.__all__)")


def setup(app):
    _check_api_page()
    _bench_page()
    _reproduce_page()
