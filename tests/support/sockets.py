"""What the kernel says about a local server's connections (Linux ``/proc/net/tcp``): lets a
test wait until a server has read the requests sent to it, instead of sleeping."""

from __future__ import annotations

from pathlib import Path

_ESTABLISHED = "01"


def requests_read(port: int) -> int:
    """Established connections to ``127.0.0.1:port`` whose receive queue on the server's side
    is empty: the server has read everything sent on them (a request it is now handling, or
    none on an idle keep-alive)."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        receive_queue = int(fields[4].split(":")[1], 16)
        if local_port == port and fields[3] == _ESTABLISHED and receive_queue == 0:
            count += 1
    return count
