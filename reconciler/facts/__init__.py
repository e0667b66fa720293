"""Facts: a host's actual state, read over SSH with read-only commands.

One small module per area, each a set of probes (commands) and a pure parser
into a frozen dataclass; ``host.HostFacts`` gathers them and ``observe``
reads hosts in parallel with one batched round trip each.
"""
