"""A client for the Jobs API: one file, Python 3.8+, standard library only.

    from jobs_api_client import Client, JobFailedError

    client = Client()                       # JOBS_API_URL, JOBS_API_TOKEN
    job = client.backup("web-1", backup_type="incremental")
    try:
        done = client.wait_for_completion(job["jobId"], timeout=600,
                                          on_progress=lambda p, job: print(p, "%"))
        print(done["result"])
    except JobFailedError as err:
        print("failed:", err.reason)

From a shell (exit codes: 0 ok, 1 the job failed, 2 usage, 3 the API refused or is
unreachable, 4 the wait timed out):

    python3 -m jobs_api_client submit scan:full --data '{"serverId": "web-1"}'
    python3 -m jobs_api_client wait JOB_ID --timeout 600 && echo done
"""

import argparse
import json
import os
import random
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional

if TYPE_CHECKING:  # the types only; at run time this file needs nothing beside it
    from jobs_api_models import Job

__all__ = ["Client", "ApiError", "JobFailedError", "WaitTimeout", "main"]

DEFAULT_URL = "http://localhost:3000"
RETRY_STATUSES = (429, 502, 503, 504)
LONG_POLL_MS = 30000


class ApiError(Exception):
    """The API answered with an error (or could not be reached: status 0)."""

    def __init__(self, status: int, code: str, message: str, request_id: Optional[str] = None) -> None:
        super().__init__("{} {}: {}{}".format(status, code, message, " [request {}]".format(request_id) if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id


class JobFailedError(Exception):
    """The job ended in `failed`; `reason` is its failure reason, `job` the job as the API shows it."""

    def __init__(self, job: "Job") -> None:
        self.job = job
        self.reason = job.get("failedReason") or "failed"
        super().__init__("job {} failed: {}".format(job.get("id"), self.reason))


class WaitTimeout(Exception):
    """The wait ended before the job did; `job` is the job as it was last seen."""

    def __init__(self, job: "Job", timeout: float) -> None:
        self.job = job
        super().__init__("job {} is still {} after {:g} s".format(job.get("id"), job.get("state"), timeout))


class Client:
    """The Jobs API over HTTP. Every method answers the `data` of the API's envelope."""

    def __init__(self, base_url: Optional[str] = None, token: Optional[str] = None, timeout: float = 30.0, retries: int = 4) -> None:
        self.base_url = (base_url or os.environ.get("JOBS_API_URL") or DEFAULT_URL).rstrip("/")
        found = token or os.environ.get("JOBS_API_TOKEN")
        if not found:
            raise ValueError("no token: pass token= or set JOBS_API_TOKEN")
        self.token: str = found
        self.timeout = timeout
        self.retries = retries

    # -- transport -------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: Any = None, query: Optional[Dict[str, Any]] = None,
                 headers: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> Any:
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        data = None if body is None else json.dumps(body).encode("utf-8")
        all_headers = {"Authorization": "Bearer " + self.token, "Accept": "application/json"}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        all_headers.update(headers or {})
        attempt = 0
        while True:
            attempt += 1
            request = urllib.request.Request(url, data=data, method=method, headers=all_headers)
            try:
                with urllib.request.urlopen(request, timeout=timeout or self.timeout) as response:
                    return _data(response.read())
            except urllib.error.HTTPError as err:
                retry_after = err.headers.get("Retry-After") if err.headers else None
                if err.code in RETRY_STATUSES and attempt <= self.retries:
                    time.sleep(_backoff(attempt, retry_after))
                    continue
                raise _api_error(err.code, err.read(), err.headers.get("x-request-id") if err.headers else None)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                if attempt <= self.retries:
                    time.sleep(_backoff(attempt, None))
                    continue
                reason = getattr(err, "reason", err)
                raise ApiError(0, "UNREACHABLE", "cannot reach {}: {}".format(self.base_url, reason))

    # -- jobs ------------------------------------------------------------------------------

    def submit(self, type: str, data: Dict[str, Any], idempotency_key: Optional[str] = None, **options: Any) -> Dict[str, Any]:
        """Enqueue a job; options are priority (1..5), delay (ms) and attempts. Answers { jobId, queue, type, state }.

        Every enqueue carries an Idempotency-Key (yours, or a new one per call), so a retry after a lost
        answer never creates a second job.
        """
        body: Dict[str, Any] = {"type": type, "data": data}
        if options:
            body["options"] = options
        # A key per call (unless you give yours) makes the retries after a lost answer safe: never two jobs.
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        return self._request("POST", "/api/jobs", body, headers=headers)

    def _server_job(self, server_id: str, kind: str, body: Dict[str, Any], options: Dict[str, Any]) -> Dict[str, Any]:
        if options:
            body["options"] = options
        path = "/api/servers/{}/{}".format(urllib.parse.quote(server_id), kind)
        return self._request("POST", path, body, headers={"Idempotency-Key": str(uuid.uuid4())})

    def backup(self, server_id: str, backup_type: str = "full", compression: bool = True, encryption: bool = False, **options: Any) -> Dict[str, Any]:
        """Back up a server's declared paths. Answers { backupId, jobId, status }."""
        return self._server_job(server_id, "backup", {"backup_type": backup_type, "compression": compression, "encryption": encryption}, options)

    def scan(self, server_id: str, scan_type: str = "full", **options: Any) -> Dict[str, Any]:
        """Check a server's declared ports. Answers { scanId, jobId, status }."""
        return self._server_job(server_id, "scan", {"scan_type": scan_type}, options)

    def update(self, server_id: str, **options: Any) -> Dict[str, Any]:
        """Run a server's declared update command. Answers { updateId, jobId, status }."""
        return self._server_job(server_id, "update", {}, options)

    def get(self, job_id: str, wait_ms: Optional[int] = None) -> "Job":
        """A job; with wait_ms (at most 60000) the answer comes when it ends or the wait does."""
        query = {"waitMs": wait_ms} if wait_ms else None
        timeout = self.timeout + (wait_ms or 0) / 1000.0
        return self._request("GET", "/api/jobs/" + urllib.parse.quote(job_id, safe=""), query=query, timeout=timeout)

    def list(self, queue: Optional[str] = None, state: Optional[str] = None, type: Optional[str] = None, page_size: int = 50) -> Iterator[Dict[str, Any]]:
        """Every job you may see, newest first, following the cursors page by page."""
        cursor = None
        while True:
            page = self._request("GET", "/api/jobs", query={"queue": queue, "state": state, "type": type, "limit": page_size, "cursor": cursor})
            for job in page["jobs"]:
                yield job
            cursor = page.get("nextCursor")
            if not cursor:
                return

    def retry(self, job_id: str) -> Dict[str, Any]:
        return self._request("POST", "/api/jobs/{}/retry".format(urllib.parse.quote(job_id, safe="")))

    def remove(self, job_id: str) -> Dict[str, Any]:
        return self._request("DELETE", "/api/jobs/" + urllib.parse.quote(job_id, safe=""))

    def cancel(self, job_id: str) -> Dict[str, Any]:
        """Stop a job. Answers { jobId, outcome: removed | cancelled | cancelling, job }."""
        return self._request("POST", "/api/jobs/{}/cancel".format(urllib.parse.quote(job_id, safe="")))

    def logs(self, job_id: str, start: int = 0, limit: int = 100) -> Dict[str, Any]:
        """A page of a job's log: { start, count, lines, nextStart }."""
        return self._request("GET", "/api/jobs/{}/logs".format(urllib.parse.quote(job_id, safe="")), query={"start": start, "limit": limit})

    def events(self, job_id: str, last_event_id: Optional[str] = None) -> Iterator[Dict[str, Any]]:
        """The job's server-sent events as dicts { event, id, data }: snapshot, progress, log, then completed or failed.

        Reconnects by itself (with Last-Event-ID) when the connection drops, so nothing is missed.
        """
        path = "/api/jobs/{}/events".format(urllib.parse.quote(job_id, safe=""))
        attempt = 0
        while True:
            headers = {"Authorization": "Bearer " + self.token, "Accept": "text/event-stream"}
            if last_event_id is not None:
                headers["Last-Event-ID"] = str(last_event_id)
            request = urllib.request.Request(self.base_url + path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=max(self.timeout, 60)) as response:
                    attempt = 0
                    for event in _parse_sse(response):
                        if event.get("id") is not None:
                            last_event_id = event["id"]
                        yield event
                        if event["event"] in ("completed", "failed", "removed"):
                            return
                    # The stream ended without a terminal event: reconnect.
            except urllib.error.HTTPError as err:
                if err.code in RETRY_STATUSES and attempt < self.retries:
                    attempt += 1
                    time.sleep(_backoff(attempt, err.headers.get("Retry-After") if err.headers else None))
                    continue
                raise _api_error(err.code, err.read(), err.headers.get("x-request-id") if err.headers else None)
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
                attempt += 1
                if attempt > self.retries:
                    raise ApiError(0, "UNREACHABLE", "event stream of {} lost: {}".format(job_id, getattr(err, "reason", err)))
                time.sleep(_backoff(attempt, None))

    def wait_for_completion(self, job_id: str, timeout: float = 3600, on_progress: Optional[Callable[[float, "Job"], None]] = None) -> "Job":
        """Wait (long-polling, no busy loop) until the job completes, and answer it.

        Raises JobFailedError when it fails and WaitTimeout when `timeout` seconds pass first.
        `on_progress(progress, job)` is called whenever the progress seen changes.
        """
        deadline = time.monotonic() + timeout
        last_progress = None
        # With a progress callback, wake up every second to report it; otherwise wait as long as allowed.
        slice_ms = 1000 if on_progress else LONG_POLL_MS
        while True:
            left_ms = int((deadline - time.monotonic()) * 1000)
            job = self.get(job_id, wait_ms=max(1, min(slice_ms, left_ms)) if left_ms > 0 else None)
            progress = job.get("progress", 0)
            if on_progress and progress != last_progress:
                last_progress = progress
                on_progress(progress, job)
            if job["state"] == "completed":
                return job
            if job["state"] == "failed":
                raise JobFailedError(job)
            if time.monotonic() >= deadline:
                raise WaitTimeout(job, timeout)


def _data(raw: bytes) -> Any:
    doc = json.loads(raw.decode("utf-8"))
    return doc.get("data")


def _api_error(status: int, raw: bytes, request_id: Optional[str]) -> ApiError:
    try:
        doc = json.loads(raw.decode("utf-8"))
        err = doc.get("error") or {}
        return ApiError(status, err.get("code", "HTTP_{}".format(status)), err.get("message", ""), doc.get("requestId") or request_id)
    except (ValueError, AttributeError):
        return ApiError(status, "HTTP_{}".format(status), raw.decode("utf-8", "replace")[:200], request_id)


def _backoff(attempt: int, retry_after: Optional[str]) -> float:
    if retry_after:
        try:
            return min(float(retry_after), 60.0)
        except ValueError:
            pass
    return min(0.25 * (2 ** (attempt - 1)), 8.0) * (0.5 + random.random() / 2)


def _parse_sse(response: Any) -> Iterator[Dict[str, Any]]:
    event: Dict[str, Any] = {}
    data: List[str] = []
    for raw in response:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data or event:
                payload = "\n".join(data)
                try:
                    parsed: Any = json.loads(payload) if payload else None
                except ValueError:
                    parsed = payload
                yield {"event": event.get("event", "message"), "id": event.get("id"), "data": parsed}
            event, data = {}, []
        elif line.startswith(":"):
            continue  # a heartbeat
        else:
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                data.append(value)
            elif field in ("event", "id"):
                event[field] = value


# -- command line ------------------------------------------------------------------------------

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_API, EXIT_TIMEOUT = 0, 1, 2, 3, 4


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m jobs_api_client", description="The Jobs API from a shell (JOBS_API_URL, JOBS_API_TOKEN).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("submit", help="enqueue a job; prints its id")
    p.add_argument("type")
    p.add_argument("--data", required=True, help='JSON, e.g. \'{"serverId": "web-1"}\'')
    p.add_argument("--priority", type=int)
    p.add_argument("--delay", type=int)
    p.add_argument("--attempts", type=int)
    p.add_argument("--idempotency-key")
    p = sub.add_parser("get", help="a job as JSON")
    p.add_argument("job_id")
    p = sub.add_parser("wait", help="wait for a job; exit 0 when it completes, 1 when it fails, 4 on timeout")
    p.add_argument("job_id")
    p.add_argument("--timeout", type=float, default=3600)
    p = sub.add_parser("list", help="jobs as JSON lines, newest first")
    p.add_argument("--queue")
    p.add_argument("--state")
    p.add_argument("--type")
    p.add_argument("--limit", type=int, default=50, help="at most this many")
    args = parser.parse_args(argv)

    try:
        client = Client()
        if args.command == "submit":
            try:
                data = json.loads(args.data)
            except ValueError as err:
                print("--data is not JSON: {}".format(err), file=sys.stderr)
                return EXIT_USAGE
            options = {k: v for k, v in (("priority", args.priority), ("delay", args.delay), ("attempts", args.attempts)) if v is not None}
            print(client.submit(args.type, data, idempotency_key=args.idempotency_key, **options)["jobId"])
        elif args.command == "get":
            print(json.dumps(client.get(args.job_id), indent=2))
        elif args.command == "wait":
            try:
                print(json.dumps(client.wait_for_completion(args.job_id, timeout=args.timeout), indent=2))
            except JobFailedError as err:
                print(json.dumps(err.job, indent=2))
                print("job failed: {}".format(err.reason), file=sys.stderr)
                return EXIT_JOB_FAILED
            except WaitTimeout as err:
                print(str(err), file=sys.stderr)
                return EXIT_TIMEOUT
        elif args.command == "list":
            for i, job in enumerate(client.list(queue=args.queue, state=args.state, type=args.type)):
                if i >= args.limit:
                    break
                print(json.dumps(job))
        return EXIT_OK
    except ValueError as err:
        print(str(err), file=sys.stderr)
        return EXIT_USAGE
    except ApiError as err:
        print(str(err), file=sys.stderr)
        return EXIT_API


if __name__ == "__main__":
    sys.exit(main())
