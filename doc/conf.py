"""Sphinx configuration of the skneuro documentation (``make docs``)."""

import os

import skneuro

# The gallery runs the examples here; they must not need a display.
os.environ.setdefault("MPLBACKEND", "Agg")

project = "skneuro"
author = "skneuro developers"
copyright = "skneuro developers"
release = skneuro.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = ["_build", "examples"]
root_doc = "index"
default_role = "literal"

# autosummary writes one stub page per public name into generated/ (git-ignored).
autosummary_generate = True
autodoc_typehints = "none"  # numpydoc sections carry the types
autodoc_member_order = "groupwise"

# numpydoc renders the docstrings; the templates' autodoc ``:members:`` list the
# methods, so numpydoc must not list them a second time (duplicate-target warnings).
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "doc_module": ("skneuro",),
    "backreferences_dir": "generated/backreferences",
    "reference_url": {"skneuro": None},
    "abort_on_example_error": True,
    "remove_config_comments": True,
    "show_memory": False,
    "image_scrapers": ("matplotlib",),
}

html_theme = "pydata_sphinx_theme"
html_title = f"skneuro {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_prev_next": False,
}
html_context = {"default_mode": "light"}


def _skip_dependency_members(app, what, name, obj, skip, options):
    """Document the methods skneuro defines, not those inherited from sklearn or torch.

    The inherited scikit-learn docstrings point into scikit-learn's own user guide
    (labels that do not exist here); the estimator template lists those methods by name.
    """
    module = getattr(obj, "__module__", None) or ""
    if module.partition(".")[0] in ("sklearn", "torch"):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_dependency_members)
