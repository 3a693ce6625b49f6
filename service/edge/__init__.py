"""The network edge: what stands between a socket and the app, around uvicorn.

``server`` builds and runs the uvicorn server for ``python -m service`` (draining on SIGTERM,
HTTPS when given a certificate, the connection limits). ``tls`` keeps the serving certificate in
step with its files, so a rotated certificate is used without a restart. ``connections`` is
uvicorn's HTTP protocol with what uvicorn lacks against slow and idle clients: a deadline on
request headers and a cap on open connections, enforced when a connection is accepted.

Above ``service.app`` (the server runs the app and drains it); nothing below imports it.
May import: ``service.app``, ``service.config``, ``service.core``.
"""
