"""The one door to Kubernetes: the port (``port.KubeAPI``: what the service needs from the
cluster, in plain JSON dicts) and its adapter (``adapter.KubeClient``, the only module in
``service`` that imports ``kubernetes``), which translates every failure once into
``service.core.errors`` (``translate``).

Every layer above talks to the port; only the composition root (``service.app``) names the
adapter. May import: ``service.core``, ``service.config``, ``service.metrics``.
"""
