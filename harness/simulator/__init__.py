"""A simulated kubelet and kruise-daemon for the one Node of the local control plane.

There is no container runtime on the test machine, so nothing would ever run a pod or restart a
container. This package plays the two node agents that would, through the apiserver only, over an
in-memory container runtime they share (as both real agents talk to containerd):

* **kubelet** (Kubernetes v1.32) - binds unscheduled pods to our node (there is no scheduler
  either), starts their containers, reports them as the status manager does (``containerd://``
  IDs, ``started``/``ready``, ``state``/``lastState``, ContainersReady and Ready with their
  ``lastTransitionTime``, readiness gates, the pod phase), starts an exited container again as
  ``restartPolicy`` says after CrashLoopBackOff (10 s doubling to 5 min, reset after ten quiet
  minutes), holds a new container unready until its startup and readiness probes would pass
  (``initialDelaySeconds``, ``periodSeconds``, ``successThreshold``), deletes terminating pods and
  keeps the Node object Ready.
* **kruise-daemon** (OpenKruise v1.9.0, ``pkg/daemon/containerrecreate``) - works with v1beta1
  CRRs only, and does nothing while the cluster does not serve v1beta1; one CRR per pod at a time
  (the others ``Pending``), ``Recreating``, per-container states, kills, and ``Completed``; 32
  workers, a retry back-off per pod (0.5 s doubling to about 50 s). A kill is the runtime's
  StopContainer with the CRR's grace period (at least 2 s): SIGTERM, then SIGKILL if the
  container has not exited when the grace period runs out (exit 143, or 137); it fails for a
  container the runtime does not have. Success is only declared from the container snapshot that
  the *real* kruise-manager writes into the CRR, never from the pod.

A restart therefore looks as on a real node: the container keeps running while it stops, is
reported terminated (not ready; ContainersReady and Ready False) until the kubelet starts it
again, then running but not ready until its probes pass. Tests choose the timings per pod:

* the probes in the pod spec, and ``terminationGracePeriodSeconds`` (copied into the CRR);
* ``crr-gateway.test/stop-seconds`` - how long the process takes to exit after SIGTERM (default
  ``0``: a well-behaved process, so a test that does not care pays nothing for the grace period);
* ``crr-gateway.test/stop-exit-code`` - its exit code then (default ``143``; ``0`` is a clean exit,
  reason ``Completed``, which ``restartPolicy: OnFailure`` does not restart);
* ``crr-gateway.test/fail-kill: "<container>[,<container>]"`` - killing those containers fails
  (read at each kill: removing the annotation ends it), like :meth:`Simulator.fail_kill`.

The package, by seam:

* :mod:`~harness.simulator.objects` - names and helpers over plain-dict objects;
* :mod:`~harness.simulator.runtime` - the in-memory container runtime and how a container stops;
* :mod:`~harness.simulator.lifecycle` - the kubelet's decisions for one container (restarts,
  CrashLoopBackOff, probes, its status), pure;
* :mod:`~harness.simulator.kubelet` - the kubelet's decisions for a pod (status, conditions,
  phase) and the node, pure;
* :mod:`~harness.simulator.daemon` - the kruise-daemon's decisions (``pick_crr``,
  ``current_recreate_states``, ``manage_step``, ...), pure, named after the Go functions;
* :mod:`~harness.simulator.plumbing` - work queue, rate limiter, backoff and the reflector;
* :mod:`~harness.simulator.apiserver` - the raw apiserver calls both agents make;
* :mod:`~harness.simulator.kubelet_agent`, :mod:`~harness.simulator.daemon_agent` - the two agents
  at work (threads, queues, writes); :mod:`~harness.simulator.node` - :class:`Simulator`.

The pure modules are checked without a cluster by ``tests/unit/harness/test_simulator_unit.py``
and ``tests/unit/harness/test_simulator_node_unit.py``;
``tests/integration/test_simulated_node.py`` watches a restart on the real control plane.

Deliberate differences from the real agents (each is repeated next to its code):

* no processes: a container is a record in memory, "exiting" is a time; preStop hooks do not run
  (none of the grace period goes to one) and a terminating pod is deleted at once, its
  containers not stopped first;
* probes never fail, so only their timing is simulated: their ticks are counted from the
  container's start (the real prober's from its worker's start, with jitter, plus extra readiness
  runs on status syncs, so a real container can be ready up to one period earlier); liveness
  probes are ignored; a readiness probe needs one status write showing the container started;
* the kubelet acts on an exit 0.5 s after it (PLEG relists every second) and always writes the
  exit to the pod before starting the container again (the real status manager can fold quick
  updates together);
* a container keeps reporting running and ready while it stops (as a real one whose readiness
  probe still passes); its SIGTERM reaction is chosen by the pod annotations above, read when it
  is stopped;
* init containers are reported completed at once and never restarted; sidecars (restartable init
  containers) are reported running and are not part of the runtime;
* no Events are recorded (the daemon records ``Killing``, the kubelet ``BackOff`` and others);
* each daemon sync lists the pod's CRRs with a consistent LIST instead of using the informer cache
  plus resourceVersion expectations, and reads the pod (for the test annotations); the watch only
  says which pods to sync, and every active pod is synced each second on top (keys in retry
  back-off excepted);
* two guards the daemon lacks: a CRR that is already completed is never written again, and a CRR
  is only set ``Pending`` when its fresh phase is still empty;
* CRRs created in the same second are ordered by name (the daemon's sort is not stable there);
* only the ``containerd`` runtime exists on the node;
* opt-in, off by default: ``Simulator(..., crr_versions=("v1beta1", "v1alpha1"))`` lets the daemon
  fall back to v1alpha1 (chosen once, when first served), as daemons of kruise releases before
  v1beta1 did; it then also reads the v1alpha1 container snapshot annotation. Note that
  kruise-manager v1.9.0 in this harness only writes snapshots while v1beta1 is served.
"""

from harness.simulator.node import Simulator, running_simulator

__all__ = ["Simulator", "running_simulator"]
