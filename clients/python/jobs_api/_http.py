"""The wire: a request of the API (`Call`), one attempt at it over urllib (`Transport`), and when to try again
(`RetryPolicy`). The sync and async clients share all three; only their loops (and how they sleep) differ."""

import email.utils
import json
import random
import socket
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.client import HTTPResponse
from typing import Any, Callable, Dict, Generic, Mapping, Optional, TypeVar

from .errors import ApiError, UnavailableError, UnexpectedResponse, api_error

__all__ = ["Call", "Response", "RetryPolicy", "Transport", "ConnectionFailed", "DEFAULT_URL", "RETRY_STATUSES"]

T = TypeVar("T")

DEFAULT_URL = "http://localhost:3000"
#: Answers worth another attempt: too many requests, and the gateway or the API unavailable for a moment.
RETRY_STATUSES = frozenset((429, 502, 503, 504))
#: Of those, the ones that say the request was not acted on, so that even a request that is not idempotent
#: may be sent again (429: over the budget; 503: Redis away, or a job not yet replicated, which only
#: enqueues answer and every enqueue carries an Idempotency-Key).
NOT_ACTED_ON = frozenset((429, 503))


@dataclass(frozen=True)
class Call(Generic[T]):
    """One request of the API and how to read its answer's `data`."""

    method: str
    path: str
    decode: Callable[[Any], T]
    #: Query parameters; None values are left out.
    query: Optional[Mapping[str, Any]] = None
    #: The JSON body, or None for none.
    body: Optional[Any] = None
    headers: Mapping[str, str] = field(default_factory=dict)
    #: Sending it twice does what sending it once does (GET, PUT, DELETE, an enqueue with its Idempotency-Key):
    #: it may be sent again after a lost answer or a broken connection, not only after a refusal.
    idempotent: bool = False
    #: Seconds the API may take on purpose (a long poll), on top of the client's timeout.
    slow: float = 0.0
    #: The answer is text, not the JSON envelope (GET /metrics).
    text: bool = False
    #: Whether an error answer worth another attempt (429, 503...) gets one (not /ready: its 503 is the answer).
    retry: bool = True


@dataclass(frozen=True)
class Response:
    status: int
    headers: Dict[str, str]
    body: bytes


class ConnectionFailed(Exception):
    """No answer. `sent`: the request may have reached the API (the connection broke after it was sent)."""

    def __init__(self, reason: BaseException, sent: bool, retryable: bool = True) -> None:
        super().__init__(str(reason))
        self.reason = reason
        self.sent = sent
        self.retryable = retryable


class RetryPolicy:
    """Exponential backoff with full jitter (a random wait between 0 and `base * 2**attempt`, at most `cap`),
    `retries` times at most; a Retry-After header is honoured (up to `max_retry_after` seconds: a longer one
    is not waited for, the error is raised with its `retry_after`)."""

    def __init__(
        self,
        retries: int = 4,
        base: float = 0.5,
        cap: float = 30.0,
        max_retry_after: float = 120.0,
        random: Callable[[], float] = random.random,
    ) -> None:
        self.retries = retries
        self.base = base
        self.cap = cap
        self.max_retry_after = max_retry_after
        self._random = random

    def backoff(self, attempt: int) -> float:
        """The wait before retry number `attempt + 1` (attempt 0 is the first retry): full jitter."""
        return float(self._random()) * min(self.cap, self.base * (2.0 ** attempt))

    def after_status(self, attempt: int, status: int, retry_after: Optional[float], idempotent: bool) -> Optional[float]:
        """Seconds to wait before trying again after an error answer, or None to give up."""
        if attempt >= self.retries or status not in RETRY_STATUSES:
            return None
        if status not in NOT_ACTED_ON and not idempotent:
            return None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        return self.backoff(attempt)

    def after_failure(self, attempt: int, failure: ConnectionFailed, idempotent: bool) -> Optional[float]:
        """Seconds to wait before trying again after no answer at all, or None to give up."""
        if attempt >= self.retries or not failure.retryable or (failure.sent and not idempotent):
            return None
        return self.backoff(attempt)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """Retry-After as seconds: a number of seconds or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """The API never redirects: a redirect would carry the token elsewhere, so it is an error instead."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class Transport:
    """One attempt at a request, over urllib (proxies from the environment, as urllib does)."""

    def __init__(self, base_url: str, token: str, timeout: float, user_agent: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.user_agent = user_agent
        self._opener = urllib.request.build_opener(_NoRedirect())

    def url(self, path: str, query: Optional[Mapping[str, Any]] = None) -> str:
        url = self.base_url + path
        params = {k: _query_value(v) for k, v in (query or {}).items() if v is not None}
        return url + "?" + urllib.parse.urlencode(params) if params else url

    def _request(self, method: str, url: str, body: Optional[Any], headers: Mapping[str, str], accept: str) -> urllib.request.Request:
        data = None if body is None else json.dumps(body).encode("utf-8")
        all_headers = {"Authorization": "Bearer " + self.token, "Accept": accept, "User-Agent": self.user_agent}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers)
        return urllib.request.Request(url, data=data, method=method, headers=all_headers)

    def send(self, call: "Call[Any]") -> Response:
        """One attempt: the answer, whatever its status; ConnectionFailed when there is none."""
        accept = "text/plain" if call.text else "application/json"
        request = self._request(call.method, self.url(call.path, call.query), call.body, call.headers, accept)
        try:
            with self._opener.open(request, timeout=self.timeout + call.slow) as response:
                return Response(response.status, _headers(response), response.read())
        except urllib.error.HTTPError as err:
            try:
                body = err.read()
            except (OSError, ValueError):
                body = b""
            return Response(err.code, _headers(err), body)
        except urllib.error.URLError as err:
            raise _failure(err.reason, sent=False) from err
        except (OSError, ValueError) as err:
            # After the request was sent: a reset, a timeout, a connection closed without an answer.
            raise _failure(err, sent=True) from err

    def open_stream(self, path: str, headers: Mapping[str, str], timeout: float) -> HTTPResponse:
        """A streaming GET (the event stream): the open response, or ApiError, or ConnectionFailed."""
        request = self._request("GET", self.url(path), None, headers, "text/event-stream")
        try:
            response = self._opener.open(request, timeout=timeout)
        except urllib.error.HTTPError as err:
            try:
                body = err.read()
            except (OSError, ValueError):
                body = b""
            raise api_error(err.code, body, _headers(err), parse_retry_after(err.headers.get("Retry-After"))) from None
        except urllib.error.URLError as err:
            raise _failure(err.reason, sent=False) from err
        except (OSError, ValueError) as err:
            raise _failure(err, sent=True) from err
        assert isinstance(response, HTTPResponse)
        return response


def read_answer(call: "Call[T]", response: Response) -> T:
    """The `data` of a successful answer, read with the call's decoder; the ApiError of an error answer."""
    if not 200 <= response.status < 300:
        raise api_error(response.status, response.body, response.headers, parse_retry_after(response.headers.get("retry-after")))
    if call.text:
        return call.decode(response.body.decode("utf-8", "replace"))
    try:
        doc = json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise UnexpectedResponse("{} {}: the answer is not JSON: {}".format(call.method, call.path, err)) from None
    if not isinstance(doc, dict) or "data" not in doc:
        raise UnexpectedResponse("{} {}: the answer has no data".format(call.method, call.path))
    return call.decode(doc["data"])


def unreachable(base_url: str, failure: ConnectionFailed) -> ApiError:
    """The error for no answer: UnavailableError with status 0 and code UNREACHABLE."""
    reason = failure.reason
    why = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    what = "no answer from the Jobs API at {} (the request may have been carried out): {}" if failure.sent else "cannot reach the Jobs API at {}: {}"
    return UnavailableError(0, "UNREACHABLE", what.format(base_url, why))


def user_agent(version: str) -> str:
    return "jobs-api-client/{} (Python {}.{})".format(version, sys.version_info[0], sys.version_info[1])


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _headers(response: Any) -> Dict[str, str]:
    headers = getattr(response, "headers", None)
    return {k.lower(): v for k, v in headers.items()} if headers is not None else {}


def _failure(reason: Any, sent: bool) -> ConnectionFailed:
    err = reason if isinstance(reason, BaseException) else OSError(str(reason))
    # A certificate the client does not trust will not become trusted by asking again.
    return ConnectionFailed(err, sent=sent and not isinstance(err, (ConnectionRefusedError, socket.gaierror)), retryable=not isinstance(err, ssl.SSLCertVerificationError))
