"""The daemon's read-only web listener: status page, ``/api/status``, ``/metrics``.

Modules: ``render`` (the page, Jinja2 with autoescape, templates in
``templates/``), ``server`` (the HTTP listener in a daemon thread).
"""
