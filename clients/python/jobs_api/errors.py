"""What can go wrong, as exceptions a program can branch on.

    JobsApiError                      every error of this package
    ├── ApiError                      the API answered with an error, or could not be reached
    │   ├── RefusedError              400, 404, 409, 413, 415, 422, 429: the request was refused (exit 6)
    │   │   ├── NotFoundError         404
    │   │   └── ConflictError         409
    │   ├── UnauthorizedError         401, 403: no, bad or expired token, or a missing scope (exit 7)
    │   └── UnavailableError          5xx, or unreachable (status 0): try again later (exit 8)
    ├── UnexpectedResponse            an answer that is not what the API documents (exit 1)
    ├── JobEndedError                 the job ended without completing (exit 4)
    │   ├── JobFailedError            it failed; `reason` says why
    │   │   └── JobCancelledError     it was stopped on request while it ran (state "cancelled", reason "cancelled")
    │   └── JobRemovedError           it was removed (or cancelled before it started) while being waited for
    ├── WaitTimeout                   the wait ended before the job did (exit 5)
    └── MissingTokenError             no token given and JOBS_API_TOKEN unset (exit 2)

The exit codes are those of the `jobsapi` command (and of jobsctl).
"""

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Type

if TYPE_CHECKING:
    from .models import Job

__all__ = [
    "JobsApiError",
    "ApiError",
    "RefusedError",
    "NotFoundError",
    "ConflictError",
    "UnauthorizedError",
    "UnavailableError",
    "UnexpectedResponse",
    "JobEndedError",
    "JobFailedError",
    "JobCancelledError",
    "JobRemovedError",
    "WaitTimeout",
    "MissingTokenError",
    "ErrorDetail",
]


class JobsApiError(Exception):
    """Every error this package raises."""


@dataclass(frozen=True)
class ErrorDetail:
    """One rejected item of a bulk request (`ApiError.details`, code BULK_INVALID)."""

    index: int
    code: str
    message: str


class ApiError(JobsApiError):
    """The API answered with its error envelope (or could not be reached: status 0, code UNREACHABLE)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: Optional[str] = None,
        retry_after: Optional[float] = None,
        details: Optional[List[ErrorDetail]] = None,
    ) -> None:
        super().__init__(
            "{} {}: {}{}".format(status or "-", code, message, " [request {}]".format(request_id) if request_id else "")
        )
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.retry_after = retry_after
        self.details: List[ErrorDetail] = details or []


class RefusedError(ApiError):
    """The API refused the request: bad input, no such thing, a state conflict, too many requests."""


class NotFoundError(RefusedError):
    """404: no such job, server, backup, restore or schedule (or another tenant's)."""


class ConflictError(RefusedError):
    """409: the job is in a state that does not allow it (removing a running job, retrying one that has not failed...)."""


class UnauthorizedError(ApiError):
    """401 or 403: the token is missing, invalid or expired, or lacks the scope."""


class UnavailableError(ApiError):
    """A 5xx answer, or the API could not be reached (status 0): worth trying again later."""


class UnexpectedResponse(JobsApiError):
    """An answer that is not what the API documents (not JSON, or a field missing or of the wrong kind)."""


class JobEndedError(JobsApiError):
    """The job ended without completing."""

    def __init__(self, job_id: str, message: str) -> None:
        super().__init__(message)
        self.job_id = job_id


class JobFailedError(JobEndedError):
    """The job failed; `reason` is its failure reason ("cancelled" when it was cancelled), `job` the job."""

    def __init__(self, job: "Job") -> None:
        self.job = job
        self.reason: str = job.failed_reason or "failed"
        super().__init__(job.id, "job {} failed: {}".format(job.id, self.reason))


class JobCancelledError(JobFailedError):
    """The job was stopped on request while it ran (its state is "cancelled"); a JobFailedError too."""

    def __init__(self, job: "Job") -> None:
        super().__init__(job)
        self.reason = "cancelled"
        self.args = ("job {} was cancelled".format(job.id),)


class JobRemovedError(JobEndedError):
    """The job was removed (or cancelled before it started) while it was being waited for or watched."""

    def __init__(self, job_id: str) -> None:
        super().__init__(job_id, "job {} was removed before it completed".format(job_id))


class WaitTimeout(JobsApiError):
    """The wait ended before the job did; `job` is the job as it was last seen."""

    def __init__(self, job: "Job", timeout: float) -> None:
        super().__init__("job {} is still {} ({:g}%) after {:g} s".format(job.id, job.state, job.progress, timeout))
        self.job = job
        self.timeout = timeout


class MissingTokenError(JobsApiError, ValueError):
    """No token was given and JOBS_API_TOKEN is not set."""


def api_error(status: int, body: bytes, headers: Mapping[str, str], retry_after: Optional[float] = None) -> ApiError:
    """The exception for an error answer: its envelope's code and message, or the status when it has none."""
    code, message, request_id = "HTTP_{}".format(status), "", headers.get("x-request-id")
    details: List[ErrorDetail] = []
    try:
        doc: Any = json.loads(body.decode("utf-8"))
        err = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(err, dict):
            code = str(err.get("code") or code)
            message = str(err.get("message") or "")
            for d in err.get("details") or []:
                if isinstance(d, dict):
                    details.append(ErrorDetail(int(d.get("index", -1)), str(d.get("code", "")), str(d.get("message", ""))))
            request_id = doc.get("requestId") or request_id
        else:
            message = body.decode("utf-8", "replace")[:200]
    except (ValueError, UnicodeDecodeError, TypeError):
        message = body.decode("utf-8", "replace")[:200]
    return error_class(status)(status, code, message or "HTTP {}".format(status), request_id, retry_after, details)


def error_class(status: int) -> Type[ApiError]:
    """The ApiError subclass for an HTTP status."""
    if status == 404:
        return NotFoundError
    if status == 409:
        return ConflictError
    if status in (401, 403):
        return UnauthorizedError
    if status == 0 or status >= 500:
        return UnavailableError
    if 400 <= status < 500:
        return RefusedError
    return ApiError
