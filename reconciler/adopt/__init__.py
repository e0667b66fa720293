"""Adopting a running fleet: ``reconciler init`` (a config repo that describes it as it is).

- ``reading``: what ``init`` reads on each host (read-only probes, the facts
  parsers reused) as one frozen :class:`~reconciler.adopt.reading.HostReading`;
- ``draft``: pure: readings + the user's choices -> build sets, kernels,
  revision, src host, each choice with the reason it was made;
- ``render``: pure: a draft -> the repo's files (fleet.yaml, buildsets/, kernels/,
  known_hosts), with comments saying where each value came from;
- ``resolve``: on the src host, the 12-hex revision of ``uname -v`` -> 40 hex.

``reconciler/commands/init.py`` confirms host keys, reads, and writes the repo.
"""
