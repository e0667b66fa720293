"""The log interface the observers (status listener, notifier) are handed.

The daemon hands them its :class:`~reconciler.daemon.logs.EventLog`; they
only know this protocol, so they sit below the daemon and never import it.
:class:`PlainLog` is the stand-in when nobody hands one.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol


class Log(Protocol):
    def debug(self, event: str, message: str, /, **fields: Any) -> None: ...
    def info(self, event: str, message: str, /, **fields: Any) -> None: ...
    def warning(self, event: str, message: str, /, **fields: Any) -> None: ...
    def error(self, event: str, message: str, /, exc: bool = False, **fields: Any) -> None: ...


class PlainLog:
    """``event: message`` on a standard logger."""

    def __init__(self, name: str = "reconciler.observe") -> None:
        self._logger = logging.getLogger(name)

    def debug(self, event: str, message: str, /, **fields: Any) -> None:
        self._logger.debug("%s: %s", event, message)

    def info(self, event: str, message: str, /, **fields: Any) -> None:
        self._logger.info("%s: %s", event, message)

    def warning(self, event: str, message: str, /, **fields: Any) -> None:
        self._logger.warning("%s: %s", event, message)

    def error(self, event: str, message: str, /, exc: bool = False, **fields: Any) -> None:
        self._logger.error("%s: %s", event, message, exc_info=exc)
