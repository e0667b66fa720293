"""The daemon's log lines: human text by default, JSON lines with ``--log-format json``.

Every line the daemon writes is an *event*: a short dotted name that a log
search can key on (``generation.new``, ``generation.rejected``, ``rollout.step``,
``drift.check``, ``daemon.stop`` ...), a human message, and optional fields
(``generation``, ``buildset``, ``host`` ...). Text lines::

    2026-11-25T14:32:24Z info  generation.new: new commit 3f2a9c1e0b7d on main

JSON lines (one object per line, keys ``time``, ``level``, ``event``, ``message``,
then the fields)::

    {"time": "2026-11-25T14:32:24.120Z", "level": "info", "event": "generation.new", ...}

The handler is installed on the ``reconciler`` logger, so warnings logged by
the other modules (``logging.getLogger(__name__)``) come out in the same format.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

LOGGER_NAME = "reconciler"
_FIELDS_ATTR = "reconciler_fields"
_EVENT_ATTR = "reconciler_event"


def _stamp(created: float, *, millis: bool) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    if millis:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _event_of(record: logging.LogRecord) -> str:
    event = getattr(record, _EVENT_ATTR, None)
    return str(event) if event else record.name


class TextFormatter(logging.Formatter):
    """``TIME level event: message (key=value ...)``."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = getattr(record, _FIELDS_ATTR, {}) or {}
        extra = " ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
        line = (
            f"{_stamp(record.created, millis=False)} {record.levelname.lower():<7} "
            f"{_event_of(record)}: {record.getMessage()}"
        )
        if extra:
            line += f" ({extra})"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, event, message, then the fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _stamp(record.created, millis=True),
            "level": record.levelname.lower(),
            "event": _event_of(record),
            "message": record.getMessage(),
        }
        fields: dict[str, Any] = getattr(record, _FIELDS_ATTR, {}) or {}
        for key, value in fields.items():
            if value is not None and key not in data:
                data[key] = value
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, sort_keys=False, default=str)


class EventLog:
    """What the daemon logs through: ``log.info("generation.new", "message", generation=sha)``."""

    def __init__(self, logger: logging.Logger | None = None) -> None:
        self.logger = logger or logging.getLogger(f"{LOGGER_NAME}.daemon")

    def emit(
        self, level: int, event: str, message: str, /, exc: bool = False, **fields: Any
    ) -> None:
        self.logger.log(
            level,
            "%s",
            message,
            exc_info=exc,
            extra={_EVENT_ATTR: event, _FIELDS_ATTR: fields},
        )

    def debug(self, event: str, message: str, /, **fields: Any) -> None:
        self.emit(logging.DEBUG, event, message, **fields)

    def info(self, event: str, message: str, /, **fields: Any) -> None:
        self.emit(logging.INFO, event, message, **fields)

    def warning(self, event: str, message: str, /, **fields: Any) -> None:
        self.emit(logging.WARNING, event, message, **fields)

    def error(self, event: str, message: str, /, exc: bool = False, **fields: Any) -> None:
        self.emit(logging.ERROR, event, message, exc=exc, **fields)


def setup_logging(
    log_format: str, *, stream: TextIO | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send the ``reconciler`` logger's records to ``stream`` (stderr) in ``log_format``.

    Replaces a handler this function installed before (so calling it twice does
    not double every line) and stops propagation to the root logger, whose
    plain format the CLI set up for one-shot commands.
    """
    if log_format not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', not {log_format!r}")
    logger = logging.getLogger(LOGGER_NAME)
    for old in list(logger.handlers):
        if getattr(old, "reconciler_daemon", False):
            logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.reconciler_daemon = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler
