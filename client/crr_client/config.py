"""Where the service is and who is calling: options first, then the environment.

The token file is read again on every request, so a projected service-account token that the
kubelet rotates in place is picked up without restarting a long ``--wait``."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

from crr_client.errors import UsageError

if TYPE_CHECKING:
    import ssl

ENV_URL = "CRR_GATEWAY_URL"
ENV_TOKEN = "CRR_GATEWAY_TOKEN"
ENV_TOKEN_FILE = "CRR_GATEWAY_TOKEN_FILE"
ENV_CA = "CRR_GATEWAY_CA"


class Config:
    """The resolved connection settings; ``bearer()`` reads the token file each time."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None = None,
        token_file: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.url = url
        self.token = token
        self.token_file = token_file
        self.ca_file = ca_file
        self._ssl_context: ssl.SSLContext | None = None

    @classmethod
    def resolve(
        cls,
        *,
        url: str | None,
        token: str | None,
        token_file: str | None,
        ca_file: str | None,
        environ: Mapping[str, str] = os.environ,
    ) -> Config:
        """Options win over the environment; a token given directly wins over a token file."""
        resolved_url = url or environ.get(ENV_URL)
        if not resolved_url:
            raise UsageError(f"no service URL: set {ENV_URL} or pass --url")
        if not resolved_url.startswith(("http://", "https://")):
            raise UsageError(f"the service URL must start with http:// or https://: {resolved_url}")
        if token is None and token_file is None:
            token = environ.get(ENV_TOKEN) or None
            token_file = None if token else environ.get(ENV_TOKEN_FILE) or None
        return cls(
            resolved_url,
            token=token,
            token_file=token_file,
            ca_file=ca_file or environ.get(ENV_CA) or None,
        )

    @property
    def reads_token_file(self) -> bool:
        return self.token is None and self.token_file is not None

    def bearer(self) -> str | None:
        """The token to send now: read from the file on every call, so rotation just works."""
        if self.token is not None:
            return self.token.strip() or None
        if self.token_file is None:
            return None
        try:
            with open(self.token_file, encoding="utf-8") as f:
                token = f.read().strip()
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"cannot read the token file {self.token_file}: {e}") from e
        if not token:
            raise UsageError(f"the token file {self.token_file} is empty")
        return token

    def ssl_context(self) -> ssl.SSLContext:
        """The system's trust store, or only the private CA when one is configured."""
        if self._ssl_context is None:
            import ssl

            try:
                self._ssl_context = ssl.create_default_context(cafile=self.ca_file)
            except (OSError, ssl.SSLError) as e:
                raise UsageError(f"cannot load the CA file {self.ca_file}: {e}") from e
        return self._ssl_context
