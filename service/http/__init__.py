"""The HTTP edge: one router per resource (``routes``), every dependency once (``deps``),
the ASGI middlewares (``middleware``), the audit record (``audit``), problem+json rendering
(``problems``), the OpenAPI response tables (``responses``), the namespace watch streams
(``watch``) and the pages for people, /docs and /ui/, from ``static/`` (``pages``).

Thin: a route checks what only HTTP knows, asks the cache or the operations, and renders the
answer; errors are raised as ``service.core.errors`` and rendered once by ``problems``.
May import every layer below: ``service.operations``, ``service.auth``, ``service.cache``,
``service.kube`` (the port), ``service.core``, ``service.config``, ``service.metrics``.
"""
