"""One router per resource: ``restarts`` (``/v1``) and ``monitoring`` (probes, metrics)."""
