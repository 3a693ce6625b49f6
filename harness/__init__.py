"""The local control plane and the simulated node, shared by the tests, ``make dev`` and bench/.

* :mod:`harness.build` builds kube-apiserver and kruise-manager from the Go module graph in
  ``harness/go.mod`` (once per pinned version, cached outside the checkout);
* :mod:`harness.certs` makes the PKI; :mod:`harness.controlplane` runs etcd, kube-apiserver and
  the real kruise-manager on loopback;
* :mod:`harness.simulator` plays the node's kubelet and kruise-daemon through the apiserver;
* :mod:`harness.dev` is ``make dev``: all of the above plus the service, in the foreground.

Nothing here ships: setuptools packages ``service`` only.
"""
