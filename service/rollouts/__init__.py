"""Rollouts: restart a container across a whole workload in place, within an availability
budget (docs/rollouts.md).

``operations``: the use cases the HTTP layer calls (create, pause, resume, cancel).
``controller``: what every replica runs to move rollouts on, one guarded write at a time.

Same layer as ``service.operations`` (the restarts' use cases): may import ``auth``, ``cache``,
``kube``, ``config``, ``metrics`` and ``core``; no web framework.
"""
