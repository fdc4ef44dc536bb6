"""Sphinx extension: pages that load without JavaScript console errors (checked by browser_tests/test_html.py).

Errors a reader's browser logged on the pages of the book (jupyter-book 1.0.4, sphinx-book-theme 1.3,
sphinx-thebe 0.3.1, pydata-sphinx-theme 0.17):

- ``Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``: sphinx-thebe's inline
  configuration script (and sphinx-togglebutton's) reach the page twice. Identical scripts are kept once.
- ``Failed to load resource: net::ERR_INTERNET_DISCONNECTED`` offline, on every page with a static player:
  matplotlib's ``FuncAnimation.to_jshtml()`` links Font Awesome 4 from a CDN for its buttons' icons. The book's
  theme bundles Font Awesome (6, which still knows the version-4 icon names), so the pages drop that link; the
  notebooks keep it for Jupyter.
- ``Got invalid theme mode: . Resetting to auto.`` on a first visit (nothing in localStorage yet): the theme has
  no default mode (pydata-sphinx-theme reads it from ``html_context["default_mode"]``). The book's default is
  ``light`` (its figures are drawn on white); the reader's switch still works.
"""

import re

from docutils import nodes

# The stylesheet link of matplotlib's JS_INCLUDE (matplotlib/_animation_data.py).
FONT_AWESOME_CDN = re.compile(r'<link rel="stylesheet"\s+href="https://maxcdn\.bootstrapcdn\.com/font-awesome/[^"]*">\s*')


def _drop_font_awesome_cdn(app, doctree, docname):
    for raw in list(doctree.findall(nodes.raw)):
        if "html" in raw.get("format", "").split() and FONT_AWESOME_CDN.search(raw.astext()):
            text = FONT_AWESOME_CDN.sub("", raw.astext())
            raw.replace_self(nodes.raw(raw.rawsource, text, format=raw["format"], classes=raw.get("classes", [])))


def _default_light_mode(app, config):
    config.html_context.setdefault("default_mode", "light")


def _drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        key = (str(getattr(script, "filename", script) or ""),  # an inline script: None or ""
               tuple(sorted((str(k), str(v)) for k, v in getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app):
    app.connect("config-inited", _default_light_mode, priority=900)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    app.connect("doctree-resolved", _drop_font_awesome_cdn)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
