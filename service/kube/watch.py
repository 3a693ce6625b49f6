"""A watch as it comes off the wire: newline-delimited JSON events from one streaming
response, closable from another thread."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import cast

import urllib3

from service.core.errors import KubeError, KubeUnavailable
from service.kube.port import WatchEvent

log = logging.getLogger(__name__)


class HttpWatchStream:
    """Newline-delimited JSON watch events from one streaming response."""

    def __init__(self, response: urllib3.BaseHTTPResponse) -> None:
        self._response = response
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> Iterator[WatchEvent]:
        buffer = bytearray()
        try:
            for chunk in self._response.stream(65536, decode_content=True):
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        yield cast(WatchEvent, json.loads(line))
            if buffer.strip() and not self._closed:
                yield cast(WatchEvent, json.loads(bytes(buffer)))
        except (urllib3.exceptions.HTTPError, OSError) as e:
            if self._closed:
                return
            raise KubeUnavailable(f"watch stream broken ({type(e).__name__}: {e})") from e
        except ValueError as e:
            if self._closed:
                return
            raise KubeError(f"undecodable watch event: {e}") from e
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        try:
            self._response.shutdown()
        except Exception:  # best effort: the socket may already be gone
            log.debug("watch shutdown failed", exc_info=True)
        try:
            self._response.release_conn()
        except Exception:
            log.debug("watch release failed", exc_info=True)
