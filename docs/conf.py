"""Sphinx configuration of the otgrad documentation.

Build (warnings are errors):

    sphinx-build -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

import importlib
import os
import sys

# The package is normally installed (``pip install -e .``); fall back to the source tree.
sys.path.insert(0, os.path.abspath(".."))

import otgrad  # noqa: E402

# -- Project -------------------------------------------------------------------------------
project = "otgrad"
author = "otgrad maintainers"
copyright = "otgrad maintainers"
version = otgrad.__version__
release = otgrad.__version__

# -- General -------------------------------------------------------------------------------
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]
templates_path: list[str] = []

# -- MyST ----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# -- autodoc -------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_default_options = {"show-inheritance": True}
autoclass_content = "class"
# Do not repeat torch.nn.Module docstrings (extra_repr, ...) on every network.
autodoc_inherit_docstrings = False
# torch is a heavy import but is installed; nothing is mocked so signatures stay exact.

# -- napoleon (Google style: "Arguments:", "Returns:", "Raises:", "Example:",
#    "References:", "Attributes:") -------------------------------------------------------
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_include_init_with_doc = False
napoleon_use_rtype = False
napoleon_use_ivar = False
napoleon_preprocess_types = False
napoleon_custom_sections = ["Subclass API"]

# -- HTML ----------------------------------------------------------------------------------
html_theme = "furo"
html_title = f"otgrad {release}"
html_static_path: list[str] = []


# -- Cross-references to re-exported names ------------------------------------------------
# The API pages document every object in the module that defines it
# (``otgrad.nn.cascade.GradNetC``), while docstrings and pages usually refer to the public
# re-export (``otgrad.nn.GradNetC``) or, inside a class, to an inherited method
# (``:meth:`logdet``` in ``StronglyConvex``). Resolve such references to the object's
# defining module; anything else stays unresolved as usual.
def _lookup(path):
    parts = path.split(".")
    for split in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for attr in parts[split:]:
                obj = getattr(obj, attr)
        except AttributeError:
            return None
        return obj
    return None


def _canonical(obj):
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not isinstance(module, str) or not isinstance(qualname, str):
        return None
    return f"{module}.{qualname}"


def _resolve_reexport(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    candidates = []
    if target.startswith("otgrad."):
        candidates.append(target)
    else:
        module, cls = node.get("py:module"), node.get("py:class")
        if module and module.startswith("otgrad"):
            if cls:
                candidates.append(f"{module}.{cls}.{target}")
            candidates.append(f"{module}.{target}")
    domain = env.get_domain("py")
    for path in candidates:
        obj = _lookup(path)
        canonical = _canonical(obj) if obj is not None else None
        if canonical is None or not canonical.startswith("otgrad") or canonical == target:
            continue
        new = node.deepcopy()
        new["reftarget"] = canonical
        found = domain.resolve_xref(
            env, node.get("refdoc"), app.builder, node.get("reftype"), canonical, new, contnode
        )
        if found is not None:
            return found
    return None


def _public_bases(app, name, obj, options, bases):
    # Show ``GradientNetwork`` rather than a private helper base such as ``_Combination``.
    for i, base in enumerate(bases):
        while base.__name__.startswith("_") and base.__bases__:
            base = base.__bases__[0]
        bases[i] = base


# -- Parameter types of classes -------------------------------------------------------------
# With autodoc_typehints = "description", Sphinx reads a class's parameter types through
# typing.get_type_hints(cls), where a class-level annotation of the same name wins over the
# __init__ annotation (``Sum(nets: Sequence[GradientNetwork])`` was listed as ``ModuleList``,
# from ``_Combination.nets``). Record the types from __init__ itself, after Sphinx does.
def _init_typehints(app, what, name, obj, options, signature, return_annotation):
    if what != "class" or "__init__" not in getattr(obj, "__dict__", {}):
        return
    try:
        from sphinx.util.inspect import signature as sphinx_signature
        from sphinx.util.typing import stringify_annotation

        sig = sphinx_signature(obj.__init__, bound_method=True)
        document = getattr(app.env, "current_document", None)
        store = getattr(document, "autodoc_annotations", None)
        if store is None:  # Sphinx < 8.2
            store = app.env.temp_data.setdefault("annotations", {})
    except Exception:  # an unknown Sphinx layout: keep what Sphinx recorded
        return
    mode = "smart" if app.config.autodoc_typehints_format == "short" else "fully-qualified"
    annotations = store.setdefault(name, {})
    for param in sig.parameters.values():
        if param.annotation is not param.empty:
            annotations[param.name] = stringify_annotation(param.annotation, mode)


def setup(app):
    app.connect("missing-reference", _resolve_reexport)
    app.connect("autodoc-process-bases", _public_bases)
    app.connect("autodoc-process-signature", _init_typehints, priority=900)
