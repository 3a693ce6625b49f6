"""Who sent the apiserver which requests: its audit log, read by user agent.

``apiserver_request_total`` (what section 2 reads) has no label for the client, and during a
rollout kruise-manager and the simulated node write to the same pods and restarts as the
service does, so a before/after difference of those counters cannot say which requests were the
service's. The apiserver's audit log can: every request is one line with its ``userAgent``
(the service sends ``crr-gateway/<version>``, kubectl ``kubectl/<version> ...``, kruise-manager
and the simulator something else), its verb and the object it touched.

The policy logs every request at level ``Metadata`` (no bodies) and only at its end
(``ResponseComplete``): one line per request. A watch is logged when it ends; it is counted by
when it was *received*, as every request is, so the long-running watches a process opened before
an interval do not count in it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from bench.stats import Counts, RequestKey

POLICY = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived", "ResponseStarted"]
rules:
  - level: Metadata
"""


def request_key(event: dict[str, object]) -> RequestKey:
    """(verb, resource, subresource) of one audit event; non-resource requests (discovery's
    ``/api``, ``/apis``) have no objectRef and an empty resource."""
    ref = event.get("objectRef")
    ref = ref if isinstance(ref, dict) else {}
    return (
        str(event.get("verb", "")),
        str(ref.get("resource", "")),
        str(ref.get("subresource", "")),
    )


def count_requests(
    lines: list[str], sent_by: Callable[[str], bool], since: datetime, until: datetime
) -> Counts:
    """Requests in the audit ``lines`` whose user agent ``sent_by`` accepts and which the
    apiserver received in [``since``, ``until``] (aware datetimes)."""
    counts: Counts = {}
    for line in lines:
        if not line.strip():
            continue
        event = json.loads(line)
        if event.get("stage") not in ("ResponseComplete", "Panic"):
            continue
        if not sent_by(str(event.get("userAgent", ""))):
            continue
        received = datetime.fromisoformat(str(event["requestReceivedTimestamp"]))
        if since <= received <= until:
            key = request_key(event)
            counts[key] = counts.get(key, 0.0) + 1
    return counts


@dataclass
class AuditLog:
    """The policy file and the log, in ``directory``; give :meth:`apiserver_args` to the
    control plane before it starts."""

    directory: Path
    _offset: int = field(default=0, init=False)

    @property
    def path(self) -> Path:
        return self.directory / "audit.log"

    def apiserver_args(self) -> list[str]:
        self.directory.mkdir(parents=True, exist_ok=True)
        policy = self.directory / "audit-policy.yaml"
        policy.write_text(POLICY)
        return [
            f"--audit-policy-file={policy}",
            f"--audit-log-path={self.path}",
            "--audit-log-format=json",
            "--audit-log-mode=blocking",  # written by the request itself, not buffered
        ]

    def skip_to_end(self) -> None:
        """Later reads start here (what the apiserver logged so far is never parsed again)."""
        self._offset = self.path.stat().st_size if self.path.exists() else 0

    def requests(self, sent_by: Callable[[str], bool], since: datetime, until: datetime) -> Counts:
        """Requests logged since the last :meth:`skip_to_end`, as :func:`count_requests`."""
        with self.path.open("rb") as log:
            log.seek(self._offset)
            data = log.read()
        # the last line may still be being written: only whole lines
        whole = data[: data.rfind(b"\n") + 1].decode()
        return count_requests(whole.splitlines(), sent_by, since, until)
