"""The ASGI middlewares, outermost first as ``service.app`` adds them:
``request_context`` (request ids in and out, the audit line of every create and delete),
``cors`` (only when origins are configured: preflights, and CORS headers on every answer),
``metrics`` (counts and times requests; an unhandled exception becomes a problem+json 500) and
``body_limit`` (413 and 415 before any route reads a body)."""
