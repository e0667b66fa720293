"""Where notifications go: JSON webhooks (HMAC-signed) and a local command (JSON on stdin)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from reconciler.errors import ReconcilerError
from reconciler.notify.events import Notice, signature


class DeliveryFailed(ReconcilerError):
    """One try of one delivery failed (the notifier retries)."""


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str = field(repr=False)
    timeout: float = 10.0
    kind: str = "webhook"

    @property
    def key(self) -> str:
        """Names the target's position file (the URL itself may hold a token)."""
        return "webhook-" + hashlib.sha256(self.url.encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        """For logs: scheme, host and port only; paths of hook URLs often carry tokens."""
        parts = urlsplit(self.url)
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}/..."

    def deliver(self, notice: Notice, delivery: str, body: bytes) -> None:
        request = urllib.request.Request(  # noqa: S310 - http(s) only, checked in settings
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "User-Agent": "reconciler",
                "X-Reconciler-Event": str(notice),
                "X-Reconciler-Delivery": delivery,
                "X-Reconciler-Signature": signature(self.secret, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as answer:  # noqa: S310
                answer.read(65536)
        except urllib.error.HTTPError as exc:
            raise DeliveryFailed(f"{self.label} answered {exc.code} {exc.reason}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(f"cannot reach {self.label}: {reason}") from exc


@dataclass(frozen=True)
class Command:
    argv: tuple[str, ...]
    timeout: float
    kind: str = "command"

    @property
    def key(self) -> str:
        return "command-" + hashlib.sha256("\0".join(self.argv).encode()).hexdigest()[:16]

    @property
    def label(self) -> str:
        return self.argv[0]

    def deliver(self, notice: Notice, delivery: str, body: bytes) -> None:
        env = {**os.environ, "RECONCILER_EVENT": str(notice), "RECONCILER_DELIVERY": delivery}
        try:
            done = subprocess.run(
                self.argv, input=body, capture_output=True, timeout=self.timeout, env=env,
                check=False,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            raise DeliveryFailed(f"{self.argv[0]} ran longer than {self.timeout:g}s") from exc
        except OSError as exc:
            raise DeliveryFailed(f"cannot run {self.argv[0]}: {exc.strerror or exc}") from exc
        if done.returncode != 0:
            said = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
            raise DeliveryFailed(f"{self.argv[0]} exited {done.returncode} {said[0]}".rstrip())


Target = Webhook | Command


def targets_from(settings: Any) -> list[Target]:
    """The targets the settings name (``webhooks``, ``notify_command``)."""
    found: list[Target] = [
        Webhook(url, settings.webhook_secret, float(settings.notify_timeout))
        for url in settings.webhooks
    ]
    if settings.notify_command:
        found.append(Command(tuple(settings.notify_command), float(settings.notify_timeout)))
    return found
