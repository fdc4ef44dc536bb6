"""Sphinx extension: Colab/Binder launch buttons only once ``repository.url`` is set.

sphinx-book-theme builds the launch links from the repository URL and fails
when there is none. Until whoever publishes the book sets ``repository.url`` in
``_config.yml``, this switches the buttons off (with one log line saying so)
instead of breaking the build.
"""

from sphinx.util import logging

logger = logging.getLogger(__name__)


def _disable_without_repository(app, config):
    options = config.html_theme_options
    if options.get("launch_buttons") and not options.get("repository_url"):
        logger.info("launch buttons off: set repository.url in _config.yml to enable Colab and Binder links")
        options["launch_buttons"] = {}


def setup(app):
    app.connect("config-inited", _disable_without_repository, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
