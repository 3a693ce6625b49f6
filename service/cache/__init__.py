"""The watch caches: every status read is answered from here, never from the apiserver.

``store.RestartCache`` holds the restarts (CRRs; ``entries.Entry``: parsed and encoded once),
``rollouts.RolloutCache`` the RestartRollouts, ``pods.PodCache`` the pods (as the records the rules
read, ``core.pods.Pod``) and ``budgets.BudgetCache`` the PodDisruptionBudgets and
PodUnavailableBudgets; ``caches.Caches`` builds, starts, drains and stops them together and says
whether they are all ready. The machinery is shared: ``reflector.Reflector`` feeds each cache from
a source (``sources``: one list+watch thread per served scope, relisting on 410 Gone or a broken
watch), ``watched.WatchedStore`` keeps the health of its scopes (``scopes``), readiness, draining
and metrics, ``keyed.KeyedStore`` adds entries that outlive their object (tombstones kept for the
retention, resourceVersion order, waiters that wake long polls and event streams) for restarts and
rollouts, and ``objects.ObjectStore`` plain decoded objects for pods and budgets.
``feed.ChangeFeed`` numbers each namespace's changes of a keyed cache for the namespace watch
streams.

All state belongs to the event loop (no locks on the read path); the threads only hand it
decoded objects, and subscribers are called on the event loop. May import: ``service.kube``
(the port), ``service.core``, ``service.config``, ``service.metrics``.
"""
