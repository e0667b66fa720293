"""The status page as HTML: one Jinja2 template, autoescaped, readable without JavaScript.

Everything on the page comes from a :class:`~reconciler.readmodel.StatusView`;
host names, commit subjects and messages are data and are escaped as such
(the ledger is only as trusted as whoever can push to its branch).
"""

from __future__ import annotations

from datetime import datetime

import jinja2

from reconciler.readmodel.views import StatusView

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("reconciler.web", "templates"),
    autoescape=True,  # every template, whatever its name
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _short(value: str | None, width: int = 12) -> str:
    return value[:width] if value else "-"


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "-"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    total = round(value)
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _ago(value: datetime | None, now: datetime) -> str:
    if value is None:
        return ""
    return _seconds(max(0.0, (now - value).total_seconds())) + " ago"


_ENV.filters.update(short=_short, when=_when, seconds=_seconds)


def render_page(view: StatusView, *, refresh: int) -> str:
    """The whole page; ``refresh`` seconds until the browser loads it again."""
    template = _ENV.get_template("status.html")
    return template.render(
        view=view,
        refresh=refresh,
        ago=lambda value: _ago(value, view.generated_at),
    )
