"""`JobsApi`: the Jobs API from a Python program, synchronously (urllib, standard library only)."""

import os
import threading
import time
from http.client import HTTPException, HTTPResponse
from typing import Any, Callable, Generator, List, Mapping, Optional, Sequence, TypeVar, Union
from urllib.parse import quote

from . import _endpoints as ep
from ._endpoints import Instant, JobSpec
from ._http import DEFAULT_URL, Call, ConnectionFailed, RetryPolicy, Transport, parse_retry_after, read_answer, unreachable, user_agent
from .errors import ApiError, JobCancelledError, JobFailedError, JobRemovedError, MissingTokenError, NotFoundError, WaitTimeout
from .events import JobEvent, parse_sse
from .models import (
    Backup,
    BackupStarted,
    BulkSubmitted,
    CancelOutcome,
    Cleaned,
    CreateWebhook,
    DeadLetter,
    DeadLetterPage,
    Drained,
    ErrorSummary,
    Health,
    Job,
    JobExplanation,
    JobPage,
    JobRemoved,
    JobRetried,
    JobStats,
    ListSlowJobs,
    LogPage,
    QueueConcurrency,
    QueueMetrics,
    QueueRetried,
    QueueStatus,
    QueueThroughput,
    Ready,
    RemoveStuckJobs,
    Replayed,
    Restore,
    RestoreRemoved,
    RestoreStarted,
    RotateWebhookSecret,
    ScanRecord,
    ScanStarted,
    Schedule,
    ScheduleRemoved,
    Server,
    ServerPage,
    StreamTicket,
    StuckJobs,
    Submitted,
    SystemMetrics,
    TenantLimit,
    TenantStats,
    Unstuck,
    UpdateStarted,
    Webhook,
    WebhookDeliveryAttempt,
    WorkerStatus,
)

__all__ = ["JobsApi", "WAIT_SLICE", "STREAM_TIMEOUT"]

T = TypeVar("T")

#: Seconds one long poll of `wait` asks the API to hold the answer (it answers as soon as the job ends).
WAIT_SLICE = 30.0
#: Seconds without a byte after which an event stream counts as broken and is reopened (the API sends a
#: heartbeat every 15 s while a job is quiet).
STREAM_TIMEOUT = 60.0


class JobsApi:
    """The Jobs API over HTTP. Every method answers the `data` of the API's answer as a model (models.py).

    `base_url` defaults to JOBS_API_URL (else http://localhost:3000), `token` to JOBS_API_TOKEN. `timeout`
    is seconds per attempt (a long poll adds its wait). `retry` says how often and how long to wait after
    429, 502, 503 and 504 answers and lost connections (default: 4 retries, exponential backoff with full
    jitter, Retry-After honoured); a request that is not idempotent is sent again only when the API said it
    did not act on it (429, 503) or it never reached the API. Every enqueue carries an Idempotency-Key
    (yours, or a new one per call), so a retry after a lost answer never creates a second job.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
    ) -> None:
        from . import __version__

        found = token or os.environ.get("JOBS_API_TOKEN")
        if not found:
            raise MissingTokenError("no token: pass token= or set JOBS_API_TOKEN (npm run token -- --sub you --scope admin makes one)")
        self.base_url = (base_url or os.environ.get("JOBS_API_URL") or DEFAULT_URL).rstrip("/")
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self._transport = Transport(self.base_url, found, timeout, user_agent(__version__))

    def __repr__(self) -> str:
        return "JobsApi({!r})".format(self.base_url)

    def __enter__(self) -> "JobsApi":
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    # -- the loop every call goes through ---------------------------------------------------------------

    def call(self, request: "Call[T]") -> T:
        """Send a request (with its retries) and read its answer: what every method does."""
        attempt = 0
        while True:
            try:
                response = self._transport.send(request)
            except ConnectionFailed as failure:
                delay = self.retry.after_failure(attempt, failure, request.idempotent)
                if delay is None:
                    raise unreachable(self.base_url, failure) from None
            else:
                delay = None
                if request.retry and not 200 <= response.status < 300:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    delay = self.retry.after_status(attempt, response.status, retry_after, request.idempotent)
                if delay is None:
                    return read_answer(request, response)
            time.sleep(delay)
            attempt += 1

    # -- jobs -------------------------------------------------------------------------------------------

    def submit(
        self,
        type: str,
        data: Mapping[str, Any],
        *,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        attempts: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        timeout_sec: Optional[int] = None,
        backoff_ms: Optional[int] = None,
        backoff_max_ms: Optional[int] = None,
    ) -> Submitted:
        """Enqueue a job (`type` e.g. "scan:full", `data` e.g. {"serverId": "web-1"}); options: priority 1..5,
        delay_ms, attempts 1..10, timeout_sec 1..86400 (a run that takes longer is stopped and the attempt
        fails), backoff_ms 100..3600000 and backoff_max_ms 100..86400000 (not below backoff_ms: the retries'
        backoff). The same idempotency_key again answers with the same job."""
        return self.call(
            ep.submit(
                type, data, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    def submit_bulk(self, jobs: Sequence[Union[JobSpec, Mapping[str, Any]]], *, idempotency_key: Optional[str] = None) -> BulkSubmitted:
        """Enqueue up to 1000 jobs at once, all or none (a bad one refuses the list: RefusedError BULK_INVALID
        with `details` naming each bad item)."""
        return self.call(ep.submit_bulk(jobs, idempotency_key))

    def get_job(self, job_id: str, *, wait_ms: Optional[int] = None) -> Job:
        """A job; with wait_ms (at most 60000) the answer comes as soon as it has ended, or when the wait does."""
        return self.call(ep.get_job(job_id, wait_ms))

    def list_jobs(
        self,
        *,
        queue: Optional[str] = None,
        state: Optional[str] = None,
        type: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        server_id: Optional[str] = None,
        created_after: Optional[Instant] = None,
        created_before: Optional[Instant] = None,
    ) -> JobPage:
        """One page of your jobs, newest first (limit 1..100, default 20); pass `next_cursor` back as cursor,
        with the same filters.

        `server_id`: only the jobs on that server. `created_after` (inclusive) and `created_before`
        (exclusive): a window of creation times, each a timezone-aware datetime or ISO 8601 text with a time
        zone ("2026-12-01T00:00:00Z"); a naive datetime is a ValueError.
        """
        return self.call(
            ep.list_jobs(queue, state, type, limit, cursor, server_id=server_id, created_after=created_after, created_before=created_before)
        )

    def iter_jobs(
        self,
        *,
        queue: Optional[str] = None,
        state: Optional[str] = None,
        type: Optional[str] = None,
        page_size: int = 100,
        server_id: Optional[str] = None,
        created_after: Optional[Instant] = None,
        created_before: Optional[Instant] = None,
    ) -> Generator[Job, None, None]:
        """Every job you may see (with the filters of `list_jobs`), newest first, following the cursors page by page."""
        cursor: Optional[str] = None
        while True:
            page = self.list_jobs(
                queue=queue,
                state=state,
                type=type,
                limit=page_size,
                cursor=cursor,
                server_id=server_id,
                created_after=created_after,
                created_before=created_before,
            )
            yield from page.jobs
            cursor = page.next_cursor
            if not cursor:
                return

    def job_stats(self) -> JobStats:
        """Job counts per queue and in total."""
        return self.call(ep.job_stats())

    def explain_job(self, job_id: str) -> JobExplanation:
        """Why the job is not running: for a waiting or delayed one (`held`), every reason that holds it
        (`reasons`: QUEUE_PAUSED, NO_WORKER, DELAYED, RETRY_BACKOFF, RATE_LIMITED, TENANT_AT_CAP, SERVER_LOCKED,
        WAITING_IN_LINE, each with a `message` and its figures); for a running or finished one, `summary`."""
        return self.call(ep.explain_job(job_id))

    def job_logs(self, job_id: str, *, start: int = 0, limit: Optional[int] = None) -> LogPage:
        """A page of a job's log lines (limit 1..1000, default 100); `next_start` is None when there is no more yet."""
        return self.call(ep.job_logs(job_id, start, limit))

    def remove_job(self, job_id: str) -> JobRemoved:
        """Remove a job (ConflictError JOB_ACTIVE while it runs: cancel it instead)."""
        return self.call(ep.remove_job(job_id))

    def retry_job(self, job_id: str) -> JobRetried:
        """Run a failed job again (ConflictError JOB_NOT_FAILED otherwise)."""
        return self.call(ep.retry_job(job_id))

    def cancel_job(self, job_id: str) -> CancelOutcome:
        """Stop a job: a waiting one is removed (outcome "removed"), a running one ends in the state "cancelled"
        (outcome "cancelled", or "cancelling" while it stops). A finished job is a ConflictError."""
        return self.call(ep.cancel_job(job_id))

    def promote_job(self, job_id: str) -> Job:
        """Run a delayed job now."""
        return self.call(ep.promote_job(job_id))

    def wait(self, job_id: str, *, timeout: Optional[float] = None, on_progress: Optional[Callable[[Job], None]] = None) -> Job:
        """Wait until the job ends, with the long-poll route (GET /api/jobs/{id}?waitMs=), and answer it completed.

        Raises JobFailedError when it fails (JobCancelledError, a subclass, when it was stopped on request while
        it ran), JobRemovedError when it disappears while waited for (a waiting job that is cancelled is
        removed), WaitTimeout when `timeout` seconds pass first. `on_progress(job)` is called whenever
        the progress seen changes (the wait then asks every second, instead of every 30 s).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        # A first read without waiting tells a job that does not exist (NotFoundError) from one that goes
        # while it is waited for (JobRemovedError), and answers a job that has ended at once.
        job = self.get_job(job_id)
        last_progress: Optional[float] = None
        while True:
            if on_progress is not None and job.progress != last_progress:
                last_progress = job.progress
                on_progress(job)
            ended = _ended(job, deadline, timeout)
            if ended is not None:
                return ended
            try:
                job = self.get_job(job_id, wait_ms=_slice_ms(deadline, 1.0 if on_progress else WAIT_SLICE))
            except NotFoundError:
                raise JobRemovedError(job_id) from None

    def watch(self, job_id: str, *, last_event_id: Optional[str] = None) -> Generator[JobEvent, None, None]:
        """The job's events as they happen (GET /api/jobs/{id}/events), until it completes, fails, is cancelled or removed.

        A snapshot first (and again after each reconnection), the log lines so far, then progress and log
        events, and last `completed`, `failed`, `cancelled` or `removed`, after which the iteration ends. A dropped
        connection is reopened with Last-Event-ID, so no log line is missed or repeated. Starting from a
        `last_event_id` gives what came after it; from the last event's (`5-end`), nothing.
        """
        return self._watch(job_id, last_event_id, None, None)

    def _watch(
        self,
        job_id: str,
        last_event_id: Optional[str],
        stop: Optional[threading.Event],
        opened: Optional[Callable[[HTTPResponse], None]],
    ) -> Generator[JobEvent, None, None]:
        path = "/api/jobs/{}/events".format(quote(job_id, safe=""))
        pause: Callable[[float], object] = time.sleep
        if stop is not None:
            pause = stop.wait
        attempt = 0
        while stop is None or not stop.is_set():
            headers = {"Last-Event-ID": last_event_id} if last_event_id is not None else {}
            try:
                response = self._transport.open_stream(path, headers, max(self.timeout, STREAM_TIMEOUT))
            except ConnectionFailed as failure:
                delay = self.retry.after_failure(attempt, failure, True)
                if delay is None:
                    raise unreachable(self.base_url, failure) from None
                pause(delay)
                attempt += 1
                continue
            except ApiError as err:
                delay = self.retry.after_status(attempt, err.status, err.retry_after, True)
                if delay is None:
                    raise
                pause(delay)
                attempt += 1
                continue
            broken: Optional[BaseException] = None
            try:
                if response.status == 204:
                    return  # the job has ended and last_event_id says its last event was seen
                if opened is not None:
                    opened(response)
                try:
                    for event in parse_sse(response):
                        if stop is not None and stop.is_set():
                            return
                        if event is None:
                            continue
                        attempt = 0
                        if event.id is not None:
                            last_event_id = event.id
                        yield event
                        if event.terminal:
                            return
                except (OSError, ValueError, HTTPException) as err:
                    broken = err
            finally:
                response.close()
            if stop is not None and stop.is_set():
                return
            # The stream ended (or broke) before the job did: reopen it from the last event seen.
            ended = ConnectionFailed(broken or EOFError("the event stream ended early"), sent=True)
            delay = self.retry.after_failure(attempt, ended, True)
            if delay is None:
                raise unreachable(self.base_url, ended)
            pause(delay)
            attempt += 1

    def stream_ticket(self, job_id: str) -> StreamTicket:
        """A ticket that opens this job's event stream for 60 s without a token (`url`), for a browser's EventSource."""
        return self.call(ep.stream_ticket(job_id))

    # -- servers ----------------------------------------------------------------------------------------

    def list_servers(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ServerPage:
        """One page of the servers of the inventory your token may act on, by id (limit 1..1000, default 100;
        commands are never shown); pass `next_cursor` back as cursor, it is None after the last page."""
        return self.call(ep.list_servers(limit, cursor))

    def iter_servers(self, *, page_size: int = 1000) -> Generator[Server, None, None]:
        """Every server your token may act on, by id, following the cursors page by page."""
        cursor: Optional[str] = None
        while True:
            page = self.list_servers(limit=page_size, cursor=cursor)
            yield from page.servers
            cursor = page.next_cursor
            if not cursor:
                return

    def get_server(self, server_id: str) -> Server:
        return self.call(ep.get_server(server_id))

    def backup(
        self,
        server_id: str,
        *,
        backup_type: Optional[str] = None,
        compression: Optional[bool] = None,
        encryption: Optional[bool] = None,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        attempts: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        timeout_sec: Optional[int] = None,
        backoff_ms: Optional[int] = None,
        backoff_max_ms: Optional[int] = None,
    ) -> BackupStarted:
        """Back up a server's declared paths (backup_type "full" or "incremental"; the API's defaults: full,
        compressed, not encrypted)."""
        return self.call(
            ep.backup(
                server_id, backup_type, compression, encryption, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    def scan(
        self,
        server_id: str,
        *,
        scan_type: Optional[str] = None,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        attempts: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        timeout_sec: Optional[int] = None,
        backoff_ms: Optional[int] = None,
        backoff_max_ms: Optional[int] = None,
    ) -> ScanStarted:
        """Check a server's declared ports (scan_type "full", the default, or "quick")."""
        return self.call(
            ep.scan(
                server_id, scan_type, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    def update(
        self,
        server_id: str,
        *,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        attempts: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        timeout_sec: Optional[int] = None,
        backoff_ms: Optional[int] = None,
        backoff_max_ms: Optional[int] = None,
    ) -> UpdateStarted:
        """Run a server's declared update command."""
        return self.call(
            ep.update(
                server_id, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    def list_backups(self, server_id: str) -> List[Backup]:
        """The server's completed backups, newest first."""
        return self.call(ep.list_backups(server_id))

    def restore(
        self,
        server_id: str,
        backup_id: str,
        *,
        priority: Optional[int] = None,
        delay_ms: Optional[int] = None,
        attempts: Optional[int] = None,
        idempotency_key: Optional[str] = None,
        timeout_sec: Optional[int] = None,
        backoff_ms: Optional[int] = None,
        backoff_max_ms: Optional[int] = None,
    ) -> RestoreStarted:
        """Restore a backup into a new directory under the API's DATA_DIR/restores/."""
        return self.call(
            ep.restore(
                server_id, backup_id, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    def list_restores(self, server_id: str) -> List[Restore]:
        """The server's completed restores, newest first."""
        return self.call(ep.list_restores(server_id))

    def remove_restore(self, server_id: str, restore_id: str) -> RestoreRemoved:
        """Delete a restore: its directory and its entry."""
        return self.call(ep.remove_restore(server_id, restore_id))

    def list_scans(self, server_id: str, *, limit: Optional[int] = None) -> List[ScanRecord]:
        """The server's recent scans, newest first (limit 1..100, default 20)."""
        return self.call(ep.list_scans(server_id, limit))

    # -- schedules --------------------------------------------------------------------------------------

    def set_schedule(
        self,
        schedule_id: str,
        type: str,
        data: Mapping[str, Any],
        cron: str,
        *,
        tz: Optional[str] = None,
        priority: Optional[int] = None,
        attempts: Optional[int] = None,
    ) -> Schedule:
        """Create or replace the schedule `schedule_id`: enqueue a job of `type` with `data` at each `cron` time."""
        return self.call(ep.set_schedule(schedule_id, type, data, cron, tz, priority, attempts))

    def list_schedules(self) -> List[Schedule]:
        return self.call(ep.list_schedules())

    def get_schedule(self, schedule_id: str, *, tenant: Optional[str] = None) -> Schedule:
        return self.call(ep.get_schedule(schedule_id, tenant))

    def remove_schedule(self, schedule_id: str, *, tenant: Optional[str] = None) -> ScheduleRemoved:
        return self.call(ep.remove_schedule(schedule_id, tenant))

    # -- webhooks ---------------------------------------------------------------------------------------

    def create_webhook(self, url: str, events: Sequence[str]) -> CreateWebhook:
        """Register an endpoint for your jobs' events; the answer's `secret` is shown this once (verify with jobs_api.webhooks.verify)."""
        return self.call(ep.create_webhook(url, events))

    def list_webhooks(self) -> List[Webhook]:
        return self.call(ep.list_webhooks())

    def get_webhook(self, webhook_id: str) -> Webhook:
        return self.call(ep.get_webhook(webhook_id))

    def remove_webhook(self, webhook_id: str) -> ScheduleRemoved:
        return self.call(ep.remove_webhook(webhook_id))

    def rotate_webhook_secret(self, webhook_id: str) -> RotateWebhookSecret:
        """A new secret; the previous one also signs for 24 hours."""
        return self.call(ep.rotate_webhook_secret(webhook_id))

    def webhook_deliveries(self, webhook_id: str) -> List[WebhookDeliveryAttempt]:
        """The webhook's latest 100 delivery attempts, newest first."""
        return self.call(ep.webhook_deliveries(webhook_id))

    # -- dead letters -----------------------------------------------------------------------------------

    def list_dead_letters(
        self,
        *,
        queue: Optional[str] = None,
        error_contains: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        error_type: Optional[str] = None,
    ) -> DeadLetterPage:
        """One page of the jobs that failed for good, newest first."""
        return self.call(ep.list_dead_letters(queue, error_contains, limit, cursor, error_type))

    def iter_dead_letters(self, *, queue: Optional[str] = None, error_contains: Optional[str] = None, error_type: Optional[str] = None, page_size: int = 100) -> Generator[DeadLetter, None, None]:
        """Every dead letter, following the cursors."""
        cursor: Optional[str] = None
        while True:
            page = self.list_dead_letters(queue=queue, error_contains=error_contains, error_type=error_type, limit=page_size, cursor=cursor)
            yield from page.jobs
            cursor = page.next_cursor
            if not cursor:
                return

    def dead_letter_errors(self, *, queue: Optional[str] = None) -> ErrorSummary:
        """The dead letters grouped by error."""
        return self.call(ep.dead_letter_errors(queue))

    def replay_dead_letters(
        self,
        *,
        ids: Optional[Sequence[str]] = None,
        queue: Optional[str] = None,
        error_contains: Optional[str] = None,
        limit: Optional[int] = None,
        error_type: Optional[str] = None,
    ) -> Replayed:
        """Enqueue dead letters again as new jobs: by `ids`, or by a filter."""
        return self.call(ep.replay_dead_letters(ids, queue, error_contains, limit, error_type))

    def remove_dead_letter(self, job_id: str) -> JobRemoved:
        return self.call(ep.remove_dead_letter(job_id))

    # -- queues (admin) ---------------------------------------------------------------------------------

    def list_queues(self) -> List[QueueStatus]:
        return self.call(ep.list_queues())

    def get_queue(self, queue: str) -> QueueStatus:
        return self.call(ep.get_queue(queue))

    def pause_queue(self, queue: str) -> QueueStatus:
        return self.call(ep.pause_queue(queue))

    def resume_queue(self, queue: str) -> QueueStatus:
        return self.call(ep.resume_queue(queue))

    def drain_queue(self, queue: str, *, delayed: bool = False, delay_ms: Optional[int] = None) -> Drained:
        """Remove the queue's waiting jobs (and its delayed ones with delayed=True); with delay_ms
        (1000..2592000000) keep them instead, moved to delayed for that long (`moved_to_delayed`,
        `delayed_until`). delay_ms with delayed=True is a ValueError."""
        return self.call(ep.drain_queue(queue, delayed, delay_ms))

    def clean_queue(self, queue: str, state: str, *, older_than_ms: Optional[int] = None, limit: Optional[int] = None) -> Cleaned:
        """Remove the queue's jobs of one state older than older_than_ms."""
        return self.call(ep.clean_queue(queue, state, older_than_ms, limit))

    def stuck_jobs(self, queue: str, *, older_than_ms: Optional[int] = None) -> StuckJobs:
        """Jobs active for longer than older_than_ms (default 10 minutes)."""
        return self.call(ep.stuck_jobs(queue, older_than_ms))

    def unstick_queue(self, queue: str, *, older_than_ms: Optional[int] = None) -> Unstuck:
        return self.call(ep.unstick_queue(queue, older_than_ms))

    def remove_stuck(self, queue: str, *, older_than_ms: Optional[int] = None) -> RemoveStuckJobs:
        """Remove the jobs active for longer than older_than_ms (default 10 minutes) entirely: their work is
        stopped, then they are deleted (unstick_queue keeps them to retry)."""
        return self.call(ep.remove_stuck(queue, older_than_ms))

    def queue_throughput(self, queue: str, *, window_min: Optional[int] = None) -> QueueThroughput:
        """Jobs finished per minute (completed, failed for good, cancelled) over the last window_min minutes
        (1..1440, default 60), with the average per minute."""
        return self.call(ep.queue_throughput(queue, window_min))

    def slow_jobs(self, queue: str, *, limit: Optional[int] = None) -> ListSlowJobs:
        """The slowest of the latest 500 finished jobs, longest run first (limit 1..100, default 10)."""
        return self.call(ep.slow_jobs(queue, limit))

    def get_concurrency(self, queue: str) -> QueueConcurrency:
        """The queue's concurrency: configured, set at run time (`override`), and what each live worker process runs."""
        return self.call(ep.get_concurrency(queue))

    def scale_queue(self, queue: str, concurrency: int) -> QueueConcurrency:
        """Run `concurrency` (1..1000) jobs of the queue at once in every worker process, until reset_concurrency."""
        return self.call(ep.scale_queue(queue, concurrency))

    def reset_concurrency(self, queue: str) -> QueueConcurrency:
        """Back to the configured concurrency (QUEUE_CONCURRENCY) in every worker process."""
        return self.call(ep.reset_concurrency(queue))

    def retry_failed(self, queue: str, *, error_contains: Optional[str] = None, limit: Optional[int] = None, dry_run: bool = False) -> QueueRetried:
        """Retry the queue's failed jobs (those whose reason contains error_contains)."""
        return self.call(ep.retry_failed(queue, error_contains, limit, dry_run))

    # -- metrics, health, workers, tenants --------------------------------------------------------------

    def health(self) -> Health:
        return self.call(ep.health())

    def ready(self) -> Ready:
        """Redis reachable and workers running; UnavailableError (503) otherwise."""
        return self.call(ep.ready())

    def queue_metrics(self) -> QueueMetrics:
        """Counts per queue and the health verdict."""
        return self.call(ep.queue_metrics())

    def system_metrics(self) -> SystemMetrics:
        return self.call(ep.system_metrics())

    def prometheus_metrics(self) -> str:
        """The Prometheus text exposition (scope metrics:read)."""
        return self.call(ep.prometheus_metrics())

    def worker_status(self) -> WorkerStatus:
        return self.call(ep.worker_status())

    def tenant_stats(self, *, tenant: Optional[str] = None) -> List[TenantStats]:
        return self.call(ep.tenant_stats(tenant))

    def get_tenant_limit(self, tenant: str) -> TenantLimit:
        return self.call(ep.get_tenant_limit(tenant))

    def set_tenant_limit(self, tenant: str, max_active: int, *, ttl_seconds: Optional[int] = None) -> TenantLimit:
        return self.call(ep.set_tenant_limit(tenant, max_active, ttl_seconds))

    def reset_tenant_limit(self, tenant: str) -> TenantLimit:
        return self.call(ep.reset_tenant_limit(tenant))

    def throttle_tenant(
        self,
        tenant: str,
        max: int,
        *,
        per_ms: Optional[int] = None,
        ttl_seconds: Optional[int] = None,
        queue: Optional[str] = None,
    ) -> TenantLimit:
        """Throttle the tenant's job starts: at most `max` per per_ms (default 60000) in `queue`, or in each
        queue when None (a job over it waits in delayed), for ttl_seconds (default 3600) or until reset_throttle."""
        return self.call(ep.throttle_tenant(tenant, max, per_ms, ttl_seconds, queue))

    def reset_throttle(self, tenant: str) -> TenantLimit:
        """End the tenant's throttle of job starts."""
        return self.call(ep.reset_throttle(tenant))


def _slice_ms(deadline: Optional[float], longest: float) -> Optional[int]:
    """Milliseconds the next long poll may wait: the slice, or what is left before the deadline (None: do not wait)."""
    left = longest if deadline is None else min(longest, deadline - time.monotonic())
    ms = int(left * 1000)
    return ms if ms > 0 else None


def _ended(job: Job, deadline: Optional[float], timeout: Optional[float]) -> Optional[Job]:
    """The job when it completed; raises when it failed, was cancelled or the deadline passed; None to keep waiting."""
    if job.state == "completed":
        return job
    if job.state == "cancelled":
        raise JobCancelledError(job)
    if job.state == "failed":
        raise JobFailedError(job)
    if deadline is not None and timeout is not None and time.monotonic() >= deadline:
        raise WaitTimeout(job, timeout)
    return None
