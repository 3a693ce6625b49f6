"""The CRR watch cache: every status read is answered from here, never from the apiserver.

``store.RestartCache`` holds the restarts (``entries.Entry``: parsed and encoded once),
answers reads, wakes long polls and event streams, keeps tombstones of deleted CRRs for the
retention, and says whether it is ready. ``reflector.Reflector`` feeds it: one list+watch
thread per served scope, relisting on 410 Gone or a broken watch.

All state belongs to the event loop (no locks on the read path); the threads only hand it
parsed entries. May import: ``service.kube`` (the port), ``service.core``,
``service.config``, ``service.metrics``.
"""
