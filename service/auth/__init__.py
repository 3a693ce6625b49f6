"""Callers (docs/auth.md): who is calling, and may they.

One module per mode: ``kube_reviews`` (``kubernetes``: TokenReview authentication and
SubjectAccessReview authorization through the apiserver, cached by ``caching``: bounded TTL
caches and single-flight), ``static_tokens`` (``static``: a tokens file); mode ``none`` lets
everyone in as anonymous. ``facade.Auth`` is what the HTTP layer asks, with the per-caller
rate limit; the order of the checks is the HTTP layer's (``service.http.deps``).

No web framework here. May import: ``service.kube`` (the port), ``service.core``,
``service.config``.
"""
