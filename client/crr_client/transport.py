"""HTTP to the service over ``http.client``: one kept-alive connection for request/response
calls, a fresh one per event stream, and retries only where repeating cannot do harm.

What is retried, bounded by ``RetryPolicy`` (attempts and total time) and by the command's
deadline:

- a *repeatable* request (a GET, or a create that carries an Idempotency-Key, which the service
  answers with the same restart however often it arrives) after any network error, and after
  429, 503 and 504, honouring ``Retry-After``;
- any other request only when the service surely did nothing: the connection could not be made,
  or the answer was 429 or 503. A 504 means the write may still land, so it is not repeated.

Answers turn into exceptions once, here: 4xx -> ``Refused`` (exit 2), 5xx and network errors ->
``Unavailable`` (exit 3), a passed deadline -> ``TimedOut`` (exit 3)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple, Union
from urllib.parse import quote, urlencode, urlsplit

from crr_client import __version__
from crr_client.config import ENV_TOKEN, ENV_TOKEN_FILE, Config
from crr_client.errors import CliError, Refused, TimedOut, Unavailable, UsageError

RETRIED_STATUSES = frozenset({429, 503, 504})
NOTHING_DONE_STATUSES = frozenset({429, 503})  # the service did nothing: safe to repeat anything
USER_AGENT = f"crr/{__version__}"

Query = Mapping[str, Union[str, int, bool]]
Notice = Callable[[str], None]


class RetryPolicy(NamedTuple):
    attempts: int = 6
    budget_seconds: float = 60.0  # total time one call may spend retrying
    first_backoff: float = 0.5  # doubled per attempt when the service gives no Retry-After
    max_backoff: float = 8.0


class Response(NamedTuple):
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise Unavailable(
                f"the service answered {self.status} with a body that is not JSON"
            ) from e

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class Stream:
    """An open event stream: its response and the connection it owns."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse):
        self._connection = connection
        self.response = response

    def readline(self) -> bytes:
        return self.response.readline(65536)

    def close(self) -> None:
        self.response.close()
        self._connection.close()


def api_path(*segments: str) -> str:
    return "/" + "/".join(quote(segment, safe="") for segment in segments)


class _NotSent(Exception):
    """The connection could not be made: the request never left this machine."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class _Answer(NamedTuple):
    response: http.client.HTTPResponse
    connection: http.client.HTTPConnection
    body: bytes | None  # None while streaming


class _CallState:
    """One call across its attempts."""

    def __init__(self, what: str, started: float, deadline: float | None, repeatable: bool):
        self.what = what
        self.started = started
        self.deadline = deadline
        self.repeatable = repeatable
        self.attempt = 0
        self.token_reread = False


class Transport:
    def __init__(
        self,
        config: Config,
        *,
        policy: RetryPolicy | None = None,
        notice: Notice | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        parts = urlsplit(config.url)
        try:
            port = parts.port
        except ValueError as e:
            raise UsageError(f"the service URL has an invalid port: {config.url}") from e
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"the service URL must be http(s)://HOST[:PORT][/PATH]: {config.url}")
        self._config = config
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = port
        self._prefix = parts.path.rstrip("/")
        self._policy = policy or RetryPolicy()
        self._notice = notice or (lambda _message: None)
        self._sleep = sleep
        self._clock = clock
        self._kept: http.client.HTTPConnection | None = None
        self._kept_used = False
        self._warned: set[str] = set()

    def close(self) -> None:
        if self._kept is not None:
            self._kept.close()
            self._kept = None

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Query | None = None,
        body: object = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        deadline: float | None = None,
        repeatable: bool = True,
    ) -> Response:
        """One call, retried as the module docstring says; a 2xx answer or an exception."""
        answer = self._call(method, path, query, body, headers, timeout, deadline, repeatable)
        assert answer.body is not None
        return Response(answer.response.status, answer.response.headers, answer.body)

    def stream(
        self,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        timeout: float = 60.0,
        deadline: float | None = None,
    ) -> Stream:
        """A GET whose 2xx body is left unread, on a connection of its own."""
        answer = self._call("GET", path, None, None, headers, timeout, deadline, True, True)
        return Stream(answer.connection, answer.response)

    def _call(
        self,
        method: str,
        path: str,
        query: Query | None,
        body: object,
        headers: Mapping[str, str] | None,
        timeout: float,
        deadline: float | None,
        repeatable: bool,
        streaming: bool = False,
    ) -> _Answer:
        target = self._prefix + path + ("?" + urlencode(query) if query else "")
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        call = _CallState(f"{method} {path}", self._clock(), deadline, repeatable)
        while True:
            call.attempt += 1
            token = self._config.bearer()
            reused = self._kept is not None and self._kept_used and not streaming
            try:
                answer = self._exchange(
                    method,
                    target,
                    payload,
                    self._headers(token, headers, payload),
                    self._socket_timeout(timeout, deadline),
                    fresh=streaming or not repeatable,
                    streaming=streaming,
                )
            except _NotSent as e:
                delay = self._after_network_error(call, e.cause, sent=False, reused=False)
            except (OSError, http.client.HTTPException) as e:
                self.close()
                if _is_certificate_error(e):
                    raise Unavailable(f"TLS to {self._config.url} failed: {e}") from e
                delay = self._after_network_error(call, e, sent=True, reused=reused)
            else:
                if 200 <= answer.response.status < 300:
                    self._warn(answer.response.headers)
                    return answer
                delay = self._after_refusal(call, answer, token)
            self._sleep(delay)

    def _after_refusal(self, call: _CallState, answer: _Answer, token: str | None) -> float:
        """How long to wait before trying again after a non-2xx answer, or raise it."""
        status, response = answer.response.status, answer.response
        if (
            status == 401
            and self._config.reads_token_file
            and not call.token_reread
            and self._config.bearer() != token
        ):
            call.token_reread = True  # rotated while this call was in flight: once more
            return 0.0
        retry_after: float | None = None
        if status in RETRIED_STATUSES and (call.repeatable or status in NOTHING_DONE_STATUSES):
            retry_after = _retry_after(response.headers)
            delay = self._backoff(call.attempt) if retry_after is None else retry_after
            if self._may_retry(call, delay):
                self._notice(
                    f"{call.what}: {status} {response.reason}; "
                    f"retrying in {delay:.1f}s (attempt {call.attempt + 1})"
                )
                return delay
        problem = self._problem(status, response, answer.body or b"", token)
        if retry_after is not None and problem.hint is None:
            problem.hint = f"the service asks to retry after {retry_after:.0f}s"
        raise problem

    def _after_network_error(
        self, call: _CallState, error: BaseException, *, sent: bool, reused: bool
    ) -> float:
        """How long to wait before trying again after a network error, or raise."""
        if sent and not call.repeatable:
            raise Unavailable(
                f"{call.what}: the connection to {self._config.url} failed after the request "
                f"was sent ({_describe(error)}); it may have reached the service"
            ) from error
        # a kept connection the server had closed: try a fresh one at once, quietly
        stale = reused and isinstance(error, (ConnectionResetError, BrokenPipeError))
        delay = 0.0 if stale else self._backoff(call.attempt)
        if self._may_retry(call, delay):
            if not stale:
                self._notice(
                    f"{call.what}: {_describe(error)}; retrying in {delay:.1f}s "
                    f"(attempt {call.attempt + 1})"
                )
            return delay
        if call.deadline is not None and self._clock() + delay >= call.deadline:
            raise TimedOut(f"{call.what}: timed out ({_describe(error)})") from error
        raise Unavailable(
            f"cannot reach the service at {self._config.url}: {_describe(error)}"
            + (f" (after {call.attempt} attempts)" if call.attempt > 1 else "")
        ) from error

    def _exchange(
        self,
        method: str,
        target: str,
        payload: bytes | None,
        headers: Mapping[str, str],
        timeout: float,
        *,
        fresh: bool,
        streaming: bool,
    ) -> _Answer:
        if fresh:
            self.close()
        connection = self._kept
        if connection is None:
            connection = self._connect(timeout)
            if not streaming:
                self._kept, self._kept_used = connection, False
        elif connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.timeout = timeout
        try:
            connection.request(method, target, body=payload, headers=dict(headers))
            response = connection.getresponse()
            if streaming and 200 <= response.status < 300:
                return _Answer(response, connection, None)
            body = response.read()
        except BaseException:
            connection.close()
            if connection is self._kept:
                self._kept = None
            raise
        if streaming:
            connection.close()
        else:
            self._kept_used = True
            if response.will_close:
                self.close()
        return _Answer(response, connection, body)

    def _connect(self, timeout: float) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=timeout, context=self._config.ssl_context()
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=timeout)
        try:
            connection.connect()
        except OSError as e:
            connection.close()
            if _is_certificate_error(e):
                raise Unavailable(f"TLS to {self._config.url} failed: {e}") from e
            raise _NotSent(e) from e
        return connection

    def _headers(
        self, token: str | None, extra: Mapping[str, str] | None, payload: bytes | None
    ) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if payload is not None:
            headers["Content-Type"] = "application/json"
        headers.update(extra or {})
        return headers

    def _socket_timeout(self, timeout: float, deadline: float | None) -> float:
        if deadline is None:
            return timeout
        return max(0.5, min(timeout, deadline - self._clock()))

    def _backoff(self, attempt: int) -> float:
        return float(min(self._policy.max_backoff, self._policy.first_backoff * 2 ** (attempt - 1)))

    def _may_retry(self, call: _CallState, delay: float) -> bool:
        now = self._clock()
        return (
            call.attempt < self._policy.attempts
            and now + delay - call.started <= self._policy.budget_seconds
            and (call.deadline is None or now + delay < call.deadline)
        )

    def warn(self, text: str) -> None:
        """Pass a warning of the service on once, however many answers (or a create's header
        and its body's ``warnings``, which the service both sends) repeat it."""
        if text not in self._warned:
            self._warned.add(text)
            self._notice(f"warning: {text}")

    def _warn(self, headers: http.client.HTTPMessage) -> None:
        for header in headers.get_all("Warning") or ():
            for text in warning_texts(header):
                self.warn(text)

    def _problem(
        self, status: int, response: http.client.HTTPResponse, body: bytes, token: str | None
    ) -> CliError:
        problem = _problem_document(response, body)
        message = describe_problem(status, response.reason, problem, body)
        if status >= 500:
            return Unavailable(message)
        error = Refused(status, problem, message)
        if status == 401 and not token:
            error.hint = f"no token was sent: set {ENV_TOKEN} or {ENV_TOKEN_FILE}, or pass --token"
        return error


def _problem_document(response: http.client.HTTPResponse, body: bytes) -> dict[str, Any] | None:
    if "json" not in (response.getheader("Content-Type") or ""):
        return None
    try:
        document = json.loads(body)
    except ValueError:
        return None
    return document if isinstance(document, dict) else None


def describe_problem(
    status: int, reason: str, problem: Mapping[str, Any] | None, body: bytes
) -> str:
    """One line for humans: status, title and detail, plus the valid container names when the
    service lists them."""
    if problem is None:
        first = body.decode("utf-8", errors="replace").strip().splitlines()[:1]
        return f"{status} {reason}" + (f": {first[0][:200]}" if first else "")
    title = problem.get("title") or reason
    detail = problem.get("detail")
    message = f"{status} {title}" + (f": {detail}" if detail else "")
    valid = problem.get("validContainers")
    if isinstance(valid, list) and valid:
        names = ", ".join(str(name) for name in valid)
        if names not in message:  # the service's detail may list them already
            message += f" (valid containers: {names})"
    return message


_WARNING = re.compile(r'[0-9]{3} \S+ "((?:[^"\\]|\\.)*)"')
_ESCAPED = re.compile(r"\\(.)")


def warning_texts(header: str) -> list[str]:
    """The warn-texts of a ``Warning`` header (RFC 7234: ``299 - "text"``, comma-separated);
    a header of another shape as it is."""
    texts = [_ESCAPED.sub(r"\1", text) for text in _WARNING.findall(header)]
    return texts or [header.strip()]


def _retry_after(headers: http.client.HTTPMessage) -> float | None:
    """``Retry-After`` as seconds from now: delta-seconds or an HTTP date."""
    value = (headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _is_certificate_error(error: BaseException) -> bool:
    import ssl

    return isinstance(error, ssl.SSLCertVerificationError)


def _describe(error: BaseException) -> str:
    if isinstance(error, socket.timeout):
        return "no answer in time"
    if isinstance(error, http.client.RemoteDisconnected):
        return "the service closed the connection"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    return str(error) or type(error).__name__
