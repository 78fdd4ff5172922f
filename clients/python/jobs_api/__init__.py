"""The Jobs API from Python: standard library only, Python 3.9+, typed (py.typed).

    from jobs_api import JobsApi, JobFailedError

    api = JobsApi()                                  # JOBS_API_URL, JOBS_API_TOKEN
    started = api.backup("web-1", backup_type="incremental")
    try:
        job = api.wait(started.job_id, timeout=600)  # the long poll: no busy loop
        print(job.result)
    except JobFailedError as err:
        print("failed:", err.reason)
    for event in api.watch(started.job_id):          # the event stream, resumed after a dropped connection
        print(event.event, event.line or "")

`AsyncJobsApi` has the same methods for asyncio. Answers are dataclasses (models.py); errors are the
exceptions of errors.py. The `jobsapi` command (or `python -m jobs_api`) does the same from a shell.
"""

__version__ = "1.0.0"

from ._endpoints import JobSpec
from ._http import Call, RetryPolicy
from .aio import AsyncJobsApi
from .client import JobsApi
from .errors import (
    ApiError,
    ConflictError,
    ErrorDetail,
    JobEndedError,
    JobCancelledError,
    JobFailedError,
    JobRemovedError,
    JobsApiError,
    MissingTokenError,
    NotFoundError,
    RefusedError,
    UnauthorizedError,
    UnavailableError,
    UnexpectedResponse,
    WaitTimeout,
)
from .events import TERMINAL_EVENTS, JobEvent
from . import models
from .models import *  # noqa: F401,F403 (every answer's model)

__all__ = [
    "__version__",
    "JobsApi",
    "AsyncJobsApi",
    "JobSpec",
    "JobEvent",
    "TERMINAL_EVENTS",
    "RetryPolicy",
    "Call",
    "JobsApiError",
    "ApiError",
    "RefusedError",
    "NotFoundError",
    "ConflictError",
    "UnauthorizedError",
    "UnavailableError",
    "UnexpectedResponse",
    "JobEndedError",
    "JobCancelledError",
    "JobFailedError",
    "JobRemovedError",
    "WaitTimeout",
    "MissingTokenError",
    "ErrorDetail",
    "models",
]
__all__ += models.__all__
