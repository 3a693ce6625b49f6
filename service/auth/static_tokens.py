"""Mode ``static``: tokens from a file (a mounted Secret) that maps sha256(token) hex to
an identity and the namespaces it may act in, for every action."""

from __future__ import annotations

import hmac
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from service.config import ALL_NAMESPACES
from service.core.errors import Unauthenticated
from service.core.identity import Action, Caller, forbidden, token_digest

log = logging.getLogger(__name__)

_SHA256_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True, slots=True)
class _FileStamp:
    device: int
    inode: int
    mtime_ns: int
    size: int


def load_tokens_file(path: Path) -> list[tuple[bytes, Caller]]:
    """Parse a tokens file: a mapping of sha256(token) hex to ``{user, groups, namespaces}``.
    Raises ``ValueError`` naming the first problem (never a token: the file has none)."""
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise ValueError(f"cannot read tokens file {path}: {e}") from e
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise ValueError(f"tokens file {path}: expected a mapping of sha256 hex to identities")
    table: list[tuple[bytes, Caller]] = []
    for raw_key, entry in document.items():
        key = str(raw_key).strip().lower()
        if len(key) != 64 or not set(key) <= _SHA256_HEX:
            raise ValueError(f"tokens file {path}: {str(raw_key)[:12]}... is not a sha256 hex")
        where = f"tokens file {path}, entry {key[:12]}..."
        if not isinstance(entry, dict) or not isinstance(entry.get("user"), str):
            raise ValueError(f"{where}: needs user")
        groups = entry.get("groups", [])
        namespaces = entry.get("namespaces", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{where}: groups must be a list of strings")
        if not isinstance(namespaces, list) or not all(isinstance(n, str) for n in namespaces):
            raise ValueError(f"{where}: namespaces must be a list of strings")
        unknown = set(entry) - {"user", "groups", "namespaces"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        caller = Caller(
            name=entry["user"],
            groups=tuple(groups),
            authenticated=True,
            namespaces=frozenset(namespaces),
        )
        table.append((bytes.fromhex(key), caller))
    return table


class StaticAuthenticator:
    """Tokens from a file (a mounted Secret), compared by hash in constant time. The file is
    re-read when it changes (checked at most once per ``recheck_seconds``); a broken new
    version is logged and the last good one kept."""

    def __init__(
        self,
        path: Path,
        *,
        recheck_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = path
        self._recheck = recheck_seconds
        self._clock = clock
        self._stamp = self._stat()
        self._table = load_tokens_file(path)  # fail at startup on a broken file
        self._checked = clock()
        log.info("static tokens file %s: %d identities", path, len(self._table))

    def _stat(self) -> _FileStamp | None:
        try:
            st = os.stat(self._path)
        except OSError:
            return None
        return _FileStamp(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)

    def _maybe_reload(self) -> None:
        now = self._clock()
        if now - self._checked < self._recheck:
            return
        self._checked = now
        stamp = self._stat()
        if stamp == self._stamp or stamp is None:
            return
        try:
            table = load_tokens_file(self._path)
        except ValueError as e:
            log.error("keeping the previous tokens: %s", e)
            return
        self._stamp, self._table = stamp, table
        log.info("reloaded tokens file %s: %d identities", self._path, len(table))

    async def authenticate(self, token: str) -> Caller:
        match = self.recall(token)
        if match is None:
            raise Unauthenticated("the bearer token is not valid", invalid_token=True)
        return match

    def recall(self, token: str) -> Caller | None:
        """The token's caller (the file is in memory: always known), or None."""
        self._maybe_reload()
        digest = token_digest(token)
        match: Caller | None = None
        for known, caller in self._table:  # every entry, whatever matches: constant time
            if hmac.compare_digest(known, digest):
                match = caller
        return match


class StaticAuthorizer:
    """The tokens file's namespaces decide, for every action."""

    async def authorize(self, caller: Caller, namespace: str, action: Action) -> None:
        if not self.recall(caller, namespace, action):
            raise forbidden(caller, namespace, f"{action} restarts")

    def recall(self, caller: Caller, namespace: str, action: Action) -> bool:
        allowed = caller.namespaces or frozenset()
        return namespace in allowed or ALL_NAMESPACES in allowed
