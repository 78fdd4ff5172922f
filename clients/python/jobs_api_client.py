"""Deprecated: the one-file client of earlier versions, kept so that programs written for it keep working.

New code: `from jobs_api import JobsApi` (typed answers, asyncio, every route; see README.md). This module
is that package under the old names, answering plain dicts as it used to:

    from jobs_api_client import Client, JobFailedError

    client = Client()                       # JOBS_API_URL, JOBS_API_TOKEN
    job = client.backup("web-1", backup_type="incremental")
    done = client.wait_for_completion(job["jobId"], timeout=600)

`python3 -m jobs_api_client ...` is now the `jobsapi` command, with jobsctl's exit codes (4: the job
failed, 5: the wait timed out, 6/7/8: refused, unauthorized, unavailable).
"""

import sys
from typing import Any, Callable, Dict, Iterator, Optional

from jobs_api import ApiError, JobsApi, JobsApiError, RetryPolicy
from jobs_api import JobFailedError as _JobFailed
from jobs_api import WaitTimeout as _WaitTimeout
from jobs_api.cli import main

__all__ = ["Client", "ApiError", "JobFailedError", "WaitTimeout", "main"]


class JobFailedError(JobsApiError):
    """The job ended in `failed`; `reason` is its failure reason, `job` the job as the API shows it (a dict)."""

    def __init__(self, job: Dict[str, Any]) -> None:
        self.job = job
        self.reason: str = job.get("failedReason") or "failed"
        super().__init__("job {} failed: {}".format(job.get("id"), self.reason))


class WaitTimeout(JobsApiError):
    """The wait ended before the job did; `job` is the job as it was last seen (a dict)."""

    def __init__(self, job: Dict[str, Any], timeout: float) -> None:
        self.job = job
        super().__init__("job {} is still {} after {:g} s".format(job.get("id"), job.get("state"), timeout))


def _options(options: Dict[str, Any]) -> Dict[str, Any]:
    unknown = set(options) - {"priority", "delay", "attempts"}
    if unknown:
        raise TypeError("unknown options: {}".format(", ".join(sorted(unknown))))
    return {"priority": options.get("priority"), "delay_ms": options.get("delay"), "attempts": options.get("attempts")}


class Client:
    """The earlier client's methods, answering the `data` of the API's answers as dicts."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0, retries: int = 4) -> None:
        self.api = JobsApi(base_url, token, timeout=timeout, retry=RetryPolicy(retries=retries))
        self.base_url = self.api.base_url
        self.timeout = timeout
        self.retries = retries

    def submit(self, type: str, data: Dict[str, Any], idempotency_key: Optional[str] = None, **options: Any) -> Dict[str, Any]:
        return self.api.submit(type, data, idempotency_key=idempotency_key, **_options(options)).to_dict()

    def backup(self, server_id: str, backup_type: str = "full", compression: bool = True, encryption: bool = False, **options: Any) -> Dict[str, Any]:
        return self.api.backup(server_id, backup_type=backup_type, compression=compression, encryption=encryption, **_options(options)).to_dict()

    def scan(self, server_id: str, scan_type: str = "full", **options: Any) -> Dict[str, Any]:
        return self.api.scan(server_id, scan_type=scan_type, **_options(options)).to_dict()

    def update(self, server_id: str, **options: Any) -> Dict[str, Any]:
        return self.api.update(server_id, **_options(options)).to_dict()

    def get(self, job_id: str, wait_ms: Optional[int] = None) -> Dict[str, Any]:
        return self.api.get_job(job_id, wait_ms=wait_ms).to_dict()

    def list(self, queue: Optional[str] = None, state: Optional[str] = None, type: Optional[str] = None, page_size: int = 50) -> Iterator[Dict[str, Any]]:
        for job in self.api.iter_jobs(queue=queue, state=state, type=type, page_size=page_size):
            yield job.to_dict()

    def retry(self, job_id: str) -> Dict[str, Any]:
        return self.api.retry_job(job_id).to_dict()

    def remove(self, job_id: str) -> Dict[str, Any]:
        return self.api.remove_job(job_id).to_dict()

    def cancel(self, job_id: str) -> Dict[str, Any]:
        return self.api.cancel_job(job_id).to_dict()

    def logs(self, job_id: str, start: int = 0, limit: int = 100) -> Dict[str, Any]:
        return self.api.job_logs(job_id, start=start, limit=limit).to_dict()

    def events(self, job_id: str, last_event_id: Optional[str] = None) -> Iterator[Dict[str, Any]]:
        for event in self.api.watch(job_id, last_event_id=last_event_id):
            yield event.to_dict()

    def wait_for_completion(
        self, job_id: str, timeout: float = 3600, on_progress: Optional[Callable[[float, Dict[str, Any]], None]] = None
    ) -> Dict[str, Any]:
        report = None if on_progress is None else (lambda job: on_progress(job.progress, job.to_dict()))
        try:
            return self.api.wait(job_id, timeout=timeout, on_progress=report).to_dict()
        except _JobFailed as err:
            raise JobFailedError(err.job.to_dict()) from None
        except _WaitTimeout as err:
            raise WaitTimeout(err.job.to_dict(), timeout) from None


if __name__ == "__main__":
    sys.exit(main())
