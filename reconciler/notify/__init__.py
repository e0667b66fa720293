"""Notifications: one message per ledger outcome that matters, to webhooks and a command hook.

Driven by the ledger, not by progress events: each target walks the status
branch from the commit it delivered last to the tip, oldest first, and
decides from the trailers (:func:`classify`) whether a commit matters (test
stage passed or failed, a build failed, a host failed or was rolled back, a
rollout halted or converged, a config commit rejected, a build quarantined).

Exactly once, across restarts: each target's position (last commit handled,
its author time, the ids of recent deliveries) is stored in the daemon's work
directory and replaced atomically after every delivery. A replayed ledger
commit (another writer won a push race) keeps its message and author date, so
its delivery id (:func:`delivery_id`) stays the same and it is not sent twice.
The one window left is a kill between a delivery and the position write; the
``X-Reconciler-Delivery`` header lets a receiver drop that repeat. A target
without a position starts at the time it was first enabled: history is not replayed.

Bounded: each delivery is tried ``notify_attempts`` times with doubling
backoff (1 s, 2 s, ... at most 60 s), then given up and logged. Every target
has its own thread, so neither a rollout nor another target ever waits for one.
"""

from __future__ import annotations

from reconciler.notify.events import Notice, classify, delivery_id, payload, signature
from reconciler.notify.position import Position, load_position, pending, save_position
from reconciler.notify.targets import Command, DeliveryFailed, Target, Webhook, targets_from
from reconciler.notify.worker import Notifier

__all__ = [
    "Command",
    "DeliveryFailed",
    "Notice",
    "Notifier",
    "Position",
    "Target",
    "Webhook",
    "classify",
    "delivery_id",
    "load_position",
    "payload",
    "pending",
    "save_position",
    "signature",
    "targets_from",
]
