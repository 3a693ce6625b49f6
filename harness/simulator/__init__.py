"""A simulated kubelet and kruise-daemon for the one Node of the local control plane.

There is no container runtime on the test machine, so nothing would ever run a pod or restart a
container. This module plays the two node agents that would, through the apiserver only:

* **kubelet** - binds unscheduled pods to our node (there is no scheduler either), reports pods on
  the node as Running with ready containers that have ``containerd://`` IDs, recomputes the Ready
  condition from ``spec.readinessGates`` as the kubelet does, deletes terminating pods with grace 0
  and keeps the Node object Ready.
* **kruise-daemon** - the ContainerRecreateRequest (CRR) half of ``pkg/daemon/containerrecreate``
  in OpenKruise v1.9.0: one CRR per pod at a time (the others ``Pending``), ``Recreating``,
  per-container states, kills, and ``Completed``. A "kill" restarts the container in the pod's
  status the way the kubelet would report it (new container ID, ``restartCount`` + 1,
  ``lastState.terminated``). Success is only declared from the container snapshot that the *real*
  kruise-manager writes into the CRR (``status.containerStatusSnapshot`` in v1beta1, the
  ``crr.apps.kruise.io/sync-container-statuses`` annotation in v1alpha1), never from the pod.

The package, by seam:

* :mod:`~harness.simulator.objects` - names and helpers over plain-dict objects;
* :mod:`~harness.simulator.daemon` - the kruise-daemon's decisions (``pick_crr``,
  ``current_recreate_states``, ``manage_step``, ...), pure, named after the Go functions;
* :mod:`~harness.simulator.kubelet` - the kubelet's decisions (``running_pod_status``,
  conditions, node status), pure;
* :mod:`~harness.simulator.plumbing` - work queue, backoff and the list/watch reflector;
* :mod:`~harness.simulator.apiserver` - the raw apiserver calls both agents make;
* :mod:`~harness.simulator.node` - :class:`Simulator`, which runs the decisions from list/watch
  loops and a delaying work queue per half.

The pure modules are checked without a cluster by ``tests/test_simulator_unit.py``.

Deliberate differences from the real agents (each is repeated next to its code):

* no processes: a kill is one pod-status write; the new container is running and ready at once
  (no exited-but-not-yet-restarted window, no readiness probes, no CrashLoopBackOff);
* no preStop hooks and no termination grace period: ``terminationGracePeriodSeconds`` and
  ``preStop`` in the CRR are accepted and ignored;
* no Events are recorded (the daemon records ``Killing`` events on the pod);
* each sync lists the pod's CRRs and reads the pod fresh from the apiserver (the "runtime" is the
  pod's status) instead of using the informer cache plus resourceVersion expectations; the watch
  only says which pods to sync;
* two guards the daemon lacks: a CRR that is already completed is never written again, and a CRR
  is only set ``Pending`` when its fresh phase is still empty;
* CRRs created in the same second are ordered by name (the daemon's sort is not stable there);
* one worker instead of 32, and a poll of every active CRR each second on top of watch events;
* only the ``containerd`` runtime exists on the node.
"""

from harness.simulator.node import Simulator, running_simulator

__all__ = ["Simulator", "running_simulator"]
