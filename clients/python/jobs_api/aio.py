"""`AsyncJobsApi`: the same methods as `JobsApi`, for asyncio programs (standard library only).

Each attempt at a request runs in a thread of its own (urllib, as the sync client); waiting between
attempts, and between the slices of a long poll, is `asyncio.sleep`, so cancelling a task stops it at
once. The threads are daemons: an attempt still running when its task is cancelled never keeps the
program from ending. An event stream is read by one such thread and handed over event by event.
"""

import asyncio
import socket
import threading
import time
from http.client import HTTPResponse
from typing import Any, AsyncGenerator, Callable, List, Mapping, Optional, Sequence, Tuple, TypeVar, Union

from . import _endpoints as ep
from ._endpoints import Instant, JobSpec
from ._http import Call, ConnectionFailed, Response, RetryPolicy, parse_retry_after, read_answer, unreachable
from .client import WAIT_SLICE, JobsApi, _ended, _slice_ms
from .errors import JobRemovedError, NotFoundError
from .events import JobEvent
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

__all__ = ["AsyncJobsApi"]

T = TypeVar("T")


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in a daemon thread, awaited. Cancelling the awaiting task leaves the thread to finish alone."""
    loop = asyncio.get_running_loop()
    future: "asyncio.Future[T]" = loop.create_future()

    def settle(result: Any, error: Optional[BaseException]) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    def run() -> None:
        result: Any = None
        error: Optional[BaseException] = None
        try:
            result = fn(*args)
        except BaseException as err:  # handed to the awaiting task, whatever it is
            error = err
        try:
            loop.call_soon_threadsafe(settle, result, error)
        except RuntimeError:
            pass  # the loop has closed: nobody is waiting any more

    threading.Thread(target=run, name="jobs-api-request", daemon=True).start()
    return await future


def _abort(response: HTTPResponse) -> None:
    """Wake a thread blocked reading `response` (best effort: shut its socket down)."""
    sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
    if isinstance(sock, socket.socket):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class AsyncJobsApi:
    """The Jobs API for asyncio: every method of `JobsApi`, awaitable (`watch` and the `iter_*` methods are
    async iterators). Same arguments, same environment (JOBS_API_URL, JOBS_API_TOKEN), same retries."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        token: Optional[str] = None,
        *,
        timeout: float = 30.0,
        retry: Optional[RetryPolicy] = None,
    ) -> None:
        self.sync = JobsApi(base_url, token, timeout=timeout, retry=retry)
        self.base_url = self.sync.base_url
        self.retry = self.sync.retry

    def __repr__(self) -> str:
        return "AsyncJobsApi({!r})".format(self.base_url)

    async def __aenter__(self) -> "AsyncJobsApi":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        return None

    async def call(self, request: "Call[T]") -> T:
        """Send a request (with its retries) and read its answer: what every method does."""
        attempt = 0
        while True:
            try:
                attempt_once: Callable[[], Tuple[Response, Optional[Tuple[T]]]] = lambda: self._attempt(request)
                response, answer = await in_thread(attempt_once)
            except ConnectionFailed as failure:
                delay = self.retry.after_failure(attempt, failure, request.idempotent)
                if delay is None:
                    raise unreachable(self.base_url, failure) from None
            else:
                if answer is not None:
                    return answer[0]
                delay = None
                if request.retry:
                    retry_after = parse_retry_after(response.headers.get("retry-after"))
                    delay = self.retry.after_status(attempt, response.status, retry_after, request.idempotent)
                if delay is None:
                    return read_answer(request, response)  # raises the error answer's ApiError
            await asyncio.sleep(delay)
            attempt += 1

    def _attempt(self, request: "Call[T]") -> Tuple[Response, Optional[Tuple[T]]]:
        """One attempt, in a thread: the answer, and its data already read when it is a success (reading a
        big page of jobs takes a while: not on the event loop)."""
        response = self.sync._transport.send(request)
        if 200 <= response.status < 300:
            return response, (read_answer(request, response),)
        return response, None

    # -- jobs -------------------------------------------------------------------------------------------

    async def submit(
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
        return await self.call(
            ep.submit(
                type, data, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    async def submit_bulk(self, jobs: Sequence[Union[JobSpec, Mapping[str, Any]]], *, idempotency_key: Optional[str] = None) -> BulkSubmitted:
        return await self.call(ep.submit_bulk(jobs, idempotency_key))

    async def get_job(self, job_id: str, *, wait_ms: Optional[int] = None) -> Job:
        return await self.call(ep.get_job(job_id, wait_ms))

    async def list_jobs(
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
        return await self.call(
            ep.list_jobs(queue, state, type, limit, cursor, server_id=server_id, created_after=created_after, created_before=created_before)
        )

    async def iter_jobs(
        self,
        *,
        queue: Optional[str] = None,
        state: Optional[str] = None,
        type: Optional[str] = None,
        page_size: int = 100,
        server_id: Optional[str] = None,
        created_after: Optional[Instant] = None,
        created_before: Optional[Instant] = None,
    ) -> AsyncGenerator[Job, None]:
        cursor: Optional[str] = None
        while True:
            page = await self.list_jobs(
                queue=queue,
                state=state,
                type=type,
                limit=page_size,
                cursor=cursor,
                server_id=server_id,
                created_after=created_after,
                created_before=created_before,
            )
            for job in page.jobs:
                yield job
            cursor = page.next_cursor
            if not cursor:
                return

    async def job_stats(self) -> JobStats:
        return await self.call(ep.job_stats())

    async def explain_job(self, job_id: str) -> JobExplanation:
        return await self.call(ep.explain_job(job_id))

    async def job_logs(self, job_id: str, *, start: int = 0, limit: Optional[int] = None) -> LogPage:
        return await self.call(ep.job_logs(job_id, start, limit))

    async def remove_job(self, job_id: str) -> JobRemoved:
        return await self.call(ep.remove_job(job_id))

    async def retry_job(self, job_id: str) -> JobRetried:
        return await self.call(ep.retry_job(job_id))

    async def cancel_job(self, job_id: str) -> CancelOutcome:
        return await self.call(ep.cancel_job(job_id))

    async def promote_job(self, job_id: str) -> Job:
        return await self.call(ep.promote_job(job_id))

    async def wait(self, job_id: str, *, timeout: Optional[float] = None, on_progress: Optional[Callable[[Job], None]] = None) -> Job:
        """As `JobsApi.wait`: the job once completed; JobFailedError (JobCancelledError when it was cancelled),
        JobRemovedError, WaitTimeout otherwise."""
        deadline = None if timeout is None else time.monotonic() + timeout
        # A first read without waiting tells a job that does not exist (NotFoundError) from one that goes
        # while it is waited for (JobRemovedError), and answers a job that has ended at once.
        job = await self.get_job(job_id)
        last_progress: Optional[float] = None
        while True:
            if on_progress is not None and job.progress != last_progress:
                last_progress = job.progress
                on_progress(job)
            ended = _ended(job, deadline, timeout)
            if ended is not None:
                return ended
            try:
                job = await self.get_job(job_id, wait_ms=_slice_ms(deadline, 1.0 if on_progress else WAIT_SLICE))
            except NotFoundError:
                raise JobRemovedError(job_id) from None

    async def watch(self, job_id: str, *, last_event_id: Optional[str] = None) -> AsyncGenerator[JobEvent, None]:
        """As `JobsApi.watch` (GET /api/jobs/{id}/events), an async iterator: reconnects with Last-Event-ID,
        ends after `completed`, `failed`, `cancelled` or `removed`."""
        loop = asyncio.get_running_loop()
        queue: "asyncio.Queue[Tuple[str, Any]]" = asyncio.Queue()
        stop = threading.Event()
        current: List[HTTPResponse] = []

        def hand(kind: str, value: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))
            except RuntimeError:
                stop.set()  # the loop has closed

        def pump() -> None:
            try:
                for event in self.sync._watch(job_id, last_event_id, stop, current.append):
                    hand("event", event)
                hand("end", None)
            except BaseException as err:  # handed to the iterating task
                hand("error", err)

        threading.Thread(target=pump, name="jobs-api-events", daemon=True).start()
        try:
            while True:
                kind, value = await queue.get()
                if kind == "event":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            stop.set()
            for response in current:
                _abort(response)

    async def stream_ticket(self, job_id: str) -> StreamTicket:
        return await self.call(ep.stream_ticket(job_id))

    # -- servers ----------------------------------------------------------------------------------------

    async def list_servers(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> ServerPage:
        return await self.call(ep.list_servers(limit, cursor))

    async def iter_servers(self, *, page_size: int = 1000) -> AsyncGenerator[Server, None]:
        cursor: Optional[str] = None
        while True:
            page = await self.list_servers(limit=page_size, cursor=cursor)
            for server in page.servers:
                yield server
            cursor = page.next_cursor
            if not cursor:
                return

    async def get_server(self, server_id: str) -> Server:
        return await self.call(ep.get_server(server_id))

    async def backup(
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
        return await self.call(
            ep.backup(
                server_id, backup_type, compression, encryption, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    async def scan(
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
        return await self.call(
            ep.scan(
                server_id, scan_type, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    async def update(
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
        return await self.call(
            ep.update(
                server_id, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    async def list_backups(self, server_id: str) -> List[Backup]:
        return await self.call(ep.list_backups(server_id))

    async def restore(
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
        return await self.call(
            ep.restore(
                server_id, backup_id, priority, delay_ms, attempts, idempotency_key,
                timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms,
            )
        )

    async def list_restores(self, server_id: str) -> List[Restore]:
        return await self.call(ep.list_restores(server_id))

    async def remove_restore(self, server_id: str, restore_id: str) -> RestoreRemoved:
        return await self.call(ep.remove_restore(server_id, restore_id))

    async def list_scans(self, server_id: str, *, limit: Optional[int] = None) -> List[ScanRecord]:
        return await self.call(ep.list_scans(server_id, limit))

    # -- schedules --------------------------------------------------------------------------------------

    async def set_schedule(
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
        return await self.call(ep.set_schedule(schedule_id, type, data, cron, tz, priority, attempts))

    async def list_schedules(self) -> List[Schedule]:
        return await self.call(ep.list_schedules())

    async def get_schedule(self, schedule_id: str, *, tenant: Optional[str] = None) -> Schedule:
        return await self.call(ep.get_schedule(schedule_id, tenant))

    async def remove_schedule(self, schedule_id: str, *, tenant: Optional[str] = None) -> ScheduleRemoved:
        return await self.call(ep.remove_schedule(schedule_id, tenant))

    # -- webhooks ---------------------------------------------------------------------------------------

    async def create_webhook(self, url: str, events: Sequence[str]) -> CreateWebhook:
        return await self.call(ep.create_webhook(url, events))

    async def list_webhooks(self) -> List[Webhook]:
        return await self.call(ep.list_webhooks())

    async def get_webhook(self, webhook_id: str) -> Webhook:
        return await self.call(ep.get_webhook(webhook_id))

    async def remove_webhook(self, webhook_id: str) -> ScheduleRemoved:
        return await self.call(ep.remove_webhook(webhook_id))

    async def rotate_webhook_secret(self, webhook_id: str) -> RotateWebhookSecret:
        return await self.call(ep.rotate_webhook_secret(webhook_id))

    async def webhook_deliveries(self, webhook_id: str) -> List[WebhookDeliveryAttempt]:
        return await self.call(ep.webhook_deliveries(webhook_id))

    # -- dead letters -----------------------------------------------------------------------------------

    async def list_dead_letters(
        self,
        *,
        queue: Optional[str] = None,
        error_contains: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
        error_type: Optional[str] = None,
    ) -> DeadLetterPage:
        return await self.call(ep.list_dead_letters(queue, error_contains, limit, cursor, error_type))

    async def iter_dead_letters(
        self, *, queue: Optional[str] = None, error_contains: Optional[str] = None, error_type: Optional[str] = None, page_size: int = 100
    ) -> AsyncGenerator[DeadLetter, None]:
        cursor: Optional[str] = None
        while True:
            page = await self.list_dead_letters(queue=queue, error_contains=error_contains, error_type=error_type, limit=page_size, cursor=cursor)
            for job in page.jobs:
                yield job
            cursor = page.next_cursor
            if not cursor:
                return

    async def dead_letter_errors(self, *, queue: Optional[str] = None) -> ErrorSummary:
        return await self.call(ep.dead_letter_errors(queue))

    async def replay_dead_letters(
        self,
        *,
        ids: Optional[Sequence[str]] = None,
        queue: Optional[str] = None,
        error_contains: Optional[str] = None,
        limit: Optional[int] = None,
        error_type: Optional[str] = None,
    ) -> Replayed:
        return await self.call(ep.replay_dead_letters(ids, queue, error_contains, limit, error_type))

    async def remove_dead_letter(self, job_id: str) -> JobRemoved:
        return await self.call(ep.remove_dead_letter(job_id))

    # -- queues (admin) ---------------------------------------------------------------------------------

    async def list_queues(self) -> List[QueueStatus]:
        return await self.call(ep.list_queues())

    async def get_queue(self, queue: str) -> QueueStatus:
        return await self.call(ep.get_queue(queue))

    async def pause_queue(self, queue: str) -> QueueStatus:
        return await self.call(ep.pause_queue(queue))

    async def resume_queue(self, queue: str) -> QueueStatus:
        return await self.call(ep.resume_queue(queue))

    async def drain_queue(self, queue: str, *, delayed: bool = False, delay_ms: Optional[int] = None) -> Drained:
        return await self.call(ep.drain_queue(queue, delayed, delay_ms))

    async def clean_queue(self, queue: str, state: str, *, older_than_ms: Optional[int] = None, limit: Optional[int] = None) -> Cleaned:
        return await self.call(ep.clean_queue(queue, state, older_than_ms, limit))

    async def stuck_jobs(self, queue: str, *, older_than_ms: Optional[int] = None) -> StuckJobs:
        return await self.call(ep.stuck_jobs(queue, older_than_ms))

    async def unstick_queue(self, queue: str, *, older_than_ms: Optional[int] = None) -> Unstuck:
        return await self.call(ep.unstick_queue(queue, older_than_ms))

    async def remove_stuck(self, queue: str, *, older_than_ms: Optional[int] = None) -> RemoveStuckJobs:
        return await self.call(ep.remove_stuck(queue, older_than_ms))

    async def queue_throughput(self, queue: str, *, window_min: Optional[int] = None) -> QueueThroughput:
        return await self.call(ep.queue_throughput(queue, window_min))

    async def slow_jobs(self, queue: str, *, limit: Optional[int] = None) -> ListSlowJobs:
        return await self.call(ep.slow_jobs(queue, limit))

    async def get_concurrency(self, queue: str) -> QueueConcurrency:
        return await self.call(ep.get_concurrency(queue))

    async def scale_queue(self, queue: str, concurrency: int) -> QueueConcurrency:
        return await self.call(ep.scale_queue(queue, concurrency))

    async def reset_concurrency(self, queue: str) -> QueueConcurrency:
        return await self.call(ep.reset_concurrency(queue))

    async def retry_failed(
        self, queue: str, *, error_contains: Optional[str] = None, limit: Optional[int] = None, dry_run: bool = False
    ) -> QueueRetried:
        return await self.call(ep.retry_failed(queue, error_contains, limit, dry_run))

    # -- metrics, health, workers, tenants --------------------------------------------------------------

    async def health(self) -> Health:
        return await self.call(ep.health())

    async def ready(self) -> Ready:
        return await self.call(ep.ready())

    async def queue_metrics(self) -> QueueMetrics:
        return await self.call(ep.queue_metrics())

    async def system_metrics(self) -> SystemMetrics:
        return await self.call(ep.system_metrics())

    async def prometheus_metrics(self) -> str:
        return await self.call(ep.prometheus_metrics())

    async def worker_status(self) -> WorkerStatus:
        return await self.call(ep.worker_status())

    async def tenant_stats(self, *, tenant: Optional[str] = None) -> List[TenantStats]:
        return await self.call(ep.tenant_stats(tenant))

    async def get_tenant_limit(self, tenant: str) -> TenantLimit:
        return await self.call(ep.get_tenant_limit(tenant))

    async def set_tenant_limit(self, tenant: str, max_active: int, *, ttl_seconds: Optional[int] = None) -> TenantLimit:
        return await self.call(ep.set_tenant_limit(tenant, max_active, ttl_seconds))

    async def reset_tenant_limit(self, tenant: str) -> TenantLimit:
        return await self.call(ep.reset_tenant_limit(tenant))

    async def throttle_tenant(
        self,
        tenant: str,
        max: int,
        *,
        per_ms: Optional[int] = None,
        ttl_seconds: Optional[int] = None,
        queue: Optional[str] = None,
    ) -> TenantLimit:
        return await self.call(ep.throttle_tenant(tenant, max, per_ms, ttl_seconds, queue))

    async def reset_throttle(self, tenant: str) -> TenantLimit:
        return await self.call(ep.reset_throttle(tenant))
