"""Every route of the API as a `Call`: its method and path, its parameters and body, and the model of its answer.

The sync client (`JobsApi`) and the async one (`AsyncJobsApi`) run the same calls. Each function names its
route in its docstring; the project's tests check that every route of openapi/openapi.json is here (the
event stream, which is not a plain call, is `JobsApi.watch`).
"""

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Mapping, Optional, Sequence, Union
from urllib.parse import quote

from ._http import Call
from ._model import decoder, list_decoder
from .models import (
    Backup,
    BackupStarted,
    BulkSubmitted,
    CancelOutcome,
    Cleaned,
    CreateWebhook,
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

__all__ = ["JobSpec", "Instant"]

#: The longest wait one long poll may ask for (GET /api/jobs/{id}?waitMs=).
MAX_WAIT_MS = 60000

#: A point in time for the list filters: an aware datetime, or ISO 8601 text with a time zone.
Instant = Union[datetime, str]

#: ISO 8601 with a time zone, as the API reads it (2026-12-01T00:00:00Z, 2026-12-01T01:00:00.5+01:00).
_ISO_WITH_ZONE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


@dataclass(frozen=True)
class JobSpec:
    """A job to enqueue in a bulk request: its type, its data, and its options (each optional)."""

    type: str
    data: Mapping[str, Any]
    #: 1 (critical) .. 5 (background); the queue's default when None.
    priority: Optional[int] = None
    #: Milliseconds to wait before it may run.
    delay_ms: Optional[int] = None
    #: Attempts in all (1..10); the API's default (3) when None.
    attempts: Optional[int] = None
    #: Seconds a run may take before its work is stopped and the attempt fails (1..86400); the server's when None.
    timeout_sec: Optional[int] = None
    #: The first retry's backoff ceiling in ms (100..3600000); RETRY_BACKOFF_MS when None.
    backoff_ms: Optional[int] = None
    #: The most a retry's ceiling may grow to in ms (100..86400000, not below backoff_ms); RETRY_BACKOFF_MAX_MS when None.
    backoff_max_ms: Optional[int] = None

    def to_dict(self) -> Dict[str, Any]:
        body: Dict[str, Any] = {"type": self.type, "data": dict(self.data)}
        options = job_options(
            self.priority,
            self.delay_ms,
            self.attempts,
            timeout_sec=self.timeout_sec,
            backoff_ms=self.backoff_ms,
            backoff_max_ms=self.backoff_max_ms,
        )
        if options:
            body["options"] = options
        return body


def job_options(
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Dict[str, int]:
    """A job's `options` as the API names them, those given only (the API checks their ranges)."""
    named = (
        ("priority", priority),
        ("delay", delay_ms),
        ("attempts", attempts),
        ("timeoutSec", timeout_sec),
        ("backoffMs", backoff_ms),
        ("backoffMaxMs", backoff_max_ms),
    )
    return {k: v for k, v in named if v is not None}


def iso_instant(name: str, value: Optional[Instant]) -> Optional[str]:
    """`value` as the API reads a point in time: ISO 8601 with a time zone (a datetime in UTC, with `Z`).

    A naive datetime (or text without a time zone) is refused: the API cannot tell which time it means.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                "{}: pass a timezone-aware datetime (e.g. datetime.now(timezone.utc)), not a naive one ({})".format(name, value.isoformat())
            )
        return value.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        text = value.strip()
        if _ISO_WITH_ZONE.match(text):
            return text
        raise ValueError("{}: expected ISO 8601 with a time zone (2026-12-01T00:00:00Z) or a timezone-aware datetime, got {!r}".format(name, value))
    raise TypeError("{}: expected a timezone-aware datetime or ISO 8601 text, got {}".format(name, type(value).__name__))


def _p(value: str) -> str:
    return quote(str(value), safe="")


def _keyed(idempotency_key: Optional[str]) -> Dict[str, str]:
    # One key per call, fixed before the first attempt: every retry of it is the same request to the API,
    # so a retry after a lost answer never enqueues a second job.
    return {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}


def _body(**fields: Any) -> Dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


# -- health -----------------------------------------------------------------------------------------------


def health() -> Call[Health]:
    """GET /health"""
    return Call("GET", "/health", decoder(Health), idempotent=True)


def ready() -> Call[Ready]:
    """GET /ready"""
    # Not retried: a 503 here is the answer (Redis unreachable or workers stopped), raised as UnavailableError.
    return Call("GET", "/ready", decoder(Ready), idempotent=True, retry=False)


# -- jobs -------------------------------------------------------------------------------------------------


def submit(
    type: str,
    data: Mapping[str, Any],
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Call[Submitted]:
    """POST /api/jobs"""
    body = JobSpec(type, data, priority, delay_ms, attempts, timeout_sec, backoff_ms, backoff_max_ms).to_dict()
    return Call("POST", "/api/jobs", decoder(Submitted), body=body, headers=_keyed(idempotency_key), idempotent=True)


def submit_bulk(jobs: Sequence[Union[JobSpec, Mapping[str, Any]]], idempotency_key: Optional[str] = None) -> Call[BulkSubmitted]:
    """POST /api/jobs/bulk"""
    items = [j.to_dict() if isinstance(j, JobSpec) else dict(j) for j in jobs]
    return Call("POST", "/api/jobs/bulk", decoder(BulkSubmitted), body={"jobs": items}, headers=_keyed(idempotency_key), idempotent=True)


def get_job(job_id: str, wait_ms: Optional[int] = None) -> Call[Job]:
    """GET /api/jobs/{id}"""
    query = {"waitMs": min(int(wait_ms), MAX_WAIT_MS)} if wait_ms else None
    return Call("GET", "/api/jobs/" + _p(job_id), decoder(Job), query=query, idempotent=True, slow=(wait_ms or 0) / 1000.0)


def list_jobs(
    queue: Optional[str] = None,
    state: Optional[str] = None,
    type: Optional[str] = None,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
    *,
    server_id: Optional[str] = None,
    created_after: Optional[Instant] = None,
    created_before: Optional[Instant] = None,
) -> Call[JobPage]:
    """GET /api/jobs"""
    query = {
        "queue": queue,
        "state": state,
        "type": type,
        "serverId": server_id,
        "createdAfter": iso_instant("created_after", created_after),
        "createdBefore": iso_instant("created_before", created_before),
        "limit": limit,
        "cursor": cursor,
    }
    return Call("GET", "/api/jobs", decoder(JobPage), query=query, idempotent=True)


def job_stats() -> Call[JobStats]:
    """GET /api/jobs/stats/all"""
    return Call("GET", "/api/jobs/stats/all", decoder(JobStats), idempotent=True)


def job_logs(job_id: str, start: int = 0, limit: Optional[int] = None) -> Call[LogPage]:
    """GET /api/jobs/{id}/logs"""
    return Call("GET", "/api/jobs/{}/logs".format(_p(job_id)), decoder(LogPage), query={"start": start, "limit": limit}, idempotent=True)


def explain_job(job_id: str) -> Call[JobExplanation]:
    """GET /api/jobs/{id}/explain"""
    return Call("GET", "/api/jobs/{}/explain".format(_p(job_id)), decoder(JobExplanation), idempotent=True)


def remove_job(job_id: str) -> Call[JobRemoved]:
    """DELETE /api/jobs/{id}"""
    return Call("DELETE", "/api/jobs/" + _p(job_id), decoder(JobRemoved), idempotent=True)


def retry_job(job_id: str) -> Call[JobRetried]:
    """POST /api/jobs/{id}/retry"""
    return Call("POST", "/api/jobs/{}/retry".format(_p(job_id)), decoder(JobRetried))


def cancel_job(job_id: str) -> Call[CancelOutcome]:
    """POST /api/jobs/{id}/cancel"""
    return Call("POST", "/api/jobs/{}/cancel".format(_p(job_id)), decoder(CancelOutcome))


def promote_job(job_id: str) -> Call[Job]:
    """POST /api/jobs/{id}/promote"""
    return Call("POST", "/api/jobs/{}/promote".format(_p(job_id)), decoder(Job))


def stream_ticket(job_id: str) -> Call[StreamTicket]:
    """POST /api/jobs/{id}/stream-ticket"""
    return Call("POST", "/api/jobs/{}/stream-ticket".format(_p(job_id)), decoder(StreamTicket))


# -- servers ----------------------------------------------------------------------------------------------


def list_servers(limit: Optional[int] = None, cursor: Optional[str] = None) -> Call[ServerPage]:
    """GET /api/servers"""
    return Call("GET", "/api/servers", decoder(ServerPage), query={"limit": limit, "cursor": cursor}, idempotent=True)


def get_server(server_id: str) -> Call[Server]:
    """GET /api/servers/{id}"""
    return Call("GET", "/api/servers/" + _p(server_id), decoder(Server), idempotent=True)


def backup(
    server_id: str,
    backup_type: Optional[str] = None,
    compression: Optional[bool] = None,
    encryption: Optional[bool] = None,
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Call[BackupStarted]:
    """POST /api/servers/{id}/backup"""
    options = job_options(priority, delay_ms, attempts, timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms)
    body = _body(backup_type=backup_type, compression=compression, encryption=encryption, options=options or None)
    return Call("POST", "/api/servers/{}/backup".format(_p(server_id)), decoder(BackupStarted), body=body, headers=_keyed(idempotency_key), idempotent=True)


def scan(
    server_id: str,
    scan_type: Optional[str] = None,
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Call[ScanStarted]:
    """POST /api/servers/{id}/scan"""
    options = job_options(priority, delay_ms, attempts, timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms)
    body = _body(scan_type=scan_type, options=options or None)
    return Call("POST", "/api/servers/{}/scan".format(_p(server_id)), decoder(ScanStarted), body=body, headers=_keyed(idempotency_key), idempotent=True)


def update(
    server_id: str,
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Call[UpdateStarted]:
    """POST /api/servers/{id}/update"""
    options = job_options(priority, delay_ms, attempts, timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms)
    body = _body(options=options or None)
    return Call("POST", "/api/servers/{}/update".format(_p(server_id)), decoder(UpdateStarted), body=body, headers=_keyed(idempotency_key), idempotent=True)


def list_backups(server_id: str) -> Call[List[Backup]]:
    """GET /api/servers/{id}/backups"""
    return Call("GET", "/api/servers/{}/backups".format(_p(server_id)), list_decoder(Backup), idempotent=True)


def restore(
    server_id: str,
    backup_id: str,
    priority: Optional[int] = None,
    delay_ms: Optional[int] = None,
    attempts: Optional[int] = None,
    idempotency_key: Optional[str] = None,
    *,
    timeout_sec: Optional[int] = None,
    backoff_ms: Optional[int] = None,
    backoff_max_ms: Optional[int] = None,
) -> Call[RestoreStarted]:
    """POST /api/servers/{id}/backups/{backupId}/restore"""
    options = job_options(priority, delay_ms, attempts, timeout_sec=timeout_sec, backoff_ms=backoff_ms, backoff_max_ms=backoff_max_ms)
    body = _body(options=options or None)
    path = "/api/servers/{}/backups/{}/restore".format(_p(server_id), _p(backup_id))
    return Call("POST", path, decoder(RestoreStarted), body=body, headers=_keyed(idempotency_key), idempotent=True)


def list_restores(server_id: str) -> Call[List[Restore]]:
    """GET /api/servers/{id}/restores"""
    return Call("GET", "/api/servers/{}/restores".format(_p(server_id)), list_decoder(Restore), idempotent=True)


def remove_restore(server_id: str, restore_id: str) -> Call[RestoreRemoved]:
    """DELETE /api/servers/{id}/restores/{restoreId}"""
    path = "/api/servers/{}/restores/{}".format(_p(server_id), _p(restore_id))
    return Call("DELETE", path, decoder(RestoreRemoved), idempotent=True)


def list_scans(server_id: str, limit: Optional[int] = None) -> Call[List[ScanRecord]]:
    """GET /api/servers/{id}/scans"""
    return Call("GET", "/api/servers/{}/scans".format(_p(server_id)), list_decoder(ScanRecord), query={"limit": limit}, idempotent=True)


# -- schedules --------------------------------------------------------------------------------------------


def set_schedule(
    schedule_id: str,
    type: str,
    data: Mapping[str, Any],
    cron: str,
    tz: Optional[str] = None,
    priority: Optional[int] = None,
    attempts: Optional[int] = None,
) -> Call[Schedule]:
    """POST /api/schedules"""
    options = job_options(priority=priority, attempts=attempts) or None
    body = _body(id=schedule_id, type=type, data=dict(data), cron=cron, tz=tz, options=options)
    # Creating or replacing by id: sending it again replaces it with itself.
    return Call("POST", "/api/schedules", decoder(Schedule), body=body, idempotent=True)


def list_schedules() -> Call[List[Schedule]]:
    """GET /api/schedules"""
    return Call("GET", "/api/schedules", list_decoder(Schedule), idempotent=True)


def get_schedule(schedule_id: str, tenant: Optional[str] = None) -> Call[Schedule]:
    """GET /api/schedules/{id}"""
    return Call("GET", "/api/schedules/" + _p(schedule_id), decoder(Schedule), query={"tenant": tenant}, idempotent=True)


def remove_schedule(schedule_id: str, tenant: Optional[str] = None) -> Call[ScheduleRemoved]:
    """DELETE /api/schedules/{id}"""
    return Call("DELETE", "/api/schedules/" + _p(schedule_id), decoder(ScheduleRemoved), query={"tenant": tenant}, idempotent=True)


# -- dead letters -----------------------------------------------------------------------------------------


def list_dead_letters(
    queue: Optional[str] = None,
    error_contains: Optional[str] = None,
    limit: Optional[int] = None,
    cursor: Optional[str] = None,
    error_type: Optional[str] = None,
) -> Call[DeadLetterPage]:
    """GET /api/dead-letters (error_type: exactly an error_type of dead_letter_errors)"""
    query = {"queue": queue, "errorContains": error_contains, "errorType": error_type, "limit": limit, "cursor": cursor}
    return Call("GET", "/api/dead-letters", decoder(DeadLetterPage), query=query, idempotent=True)


def dead_letter_errors(queue: Optional[str] = None) -> Call[ErrorSummary]:
    """GET /api/dead-letters/errors"""
    return Call("GET", "/api/dead-letters/errors", decoder(ErrorSummary), query={"queue": queue}, idempotent=True)


def replay_dead_letters(
    ids: Optional[Sequence[str]] = None,
    queue: Optional[str] = None,
    error_contains: Optional[str] = None,
    limit: Optional[int] = None,
    error_type: Optional[str] = None,
) -> Call[Replayed]:
    """POST /api/dead-letters/replay"""
    if ids is not None:
        if queue is not None or error_contains is not None or error_type is not None or limit is not None:
            raise ValueError("replay either ids or a filter (queue, error_type, error_contains, limit), not both")
        body: Dict[str, Any] = {"ids": list(ids)}
    else:
        body = _body(queue=queue, errorType=error_type, errorContains=error_contains, limit=limit)
    return Call("POST", "/api/dead-letters/replay", decoder(Replayed), body=body)


def remove_dead_letter(job_id: str) -> Call[JobRemoved]:
    """DELETE /api/dead-letters/{id}"""
    return Call("DELETE", "/api/dead-letters/" + _p(job_id), decoder(JobRemoved), idempotent=True)


# -- queues -----------------------------------------------------------------------------------------------


def list_queues() -> Call[List[QueueStatus]]:
    """GET /api/queues"""
    return Call("GET", "/api/queues", list_decoder(QueueStatus), idempotent=True)


def get_queue(queue: str) -> Call[QueueStatus]:
    """GET /api/queues/{queue}"""
    return Call("GET", "/api/queues/" + _p(queue), decoder(QueueStatus), idempotent=True)


def pause_queue(queue: str) -> Call[QueueStatus]:
    """POST /api/queues/{queue}/pause"""
    return Call("POST", "/api/queues/{}/pause".format(_p(queue)), decoder(QueueStatus), idempotent=True)


def resume_queue(queue: str) -> Call[QueueStatus]:
    """POST /api/queues/{queue}/resume"""
    return Call("POST", "/api/queues/{}/resume".format(_p(queue)), decoder(QueueStatus), idempotent=True)


def drain_queue(queue: str, delayed: bool = False, delay_ms: Optional[int] = None) -> Call[Drained]:
    """POST /api/queues/{queue}/drain"""
    if delay_ms is not None and delayed:
        raise ValueError("delay_ms keeps the waiting jobs (moved to delayed): it cannot be combined with delayed=True, which removes jobs")
    body = _body(delayed=delayed, delayMs=delay_ms)
    return Call("POST", "/api/queues/{}/drain".format(_p(queue)), decoder(Drained), body=body)


def clean_queue(queue: str, state: str, older_than_ms: Optional[int] = None, limit: Optional[int] = None) -> Call[Cleaned]:
    """POST /api/queues/{queue}/clean"""
    body = _body(state=state, olderThanMs=older_than_ms, limit=limit)
    return Call("POST", "/api/queues/{}/clean".format(_p(queue)), decoder(Cleaned), body=body)


def stuck_jobs(queue: str, older_than_ms: Optional[int] = None) -> Call[StuckJobs]:
    """GET /api/queues/{queue}/stuck"""
    return Call("GET", "/api/queues/{}/stuck".format(_p(queue)), decoder(StuckJobs), query={"olderThanMs": older_than_ms}, idempotent=True)


def unstick_queue(queue: str, older_than_ms: Optional[int] = None) -> Call[Unstuck]:
    """POST /api/queues/{queue}/unstick"""
    return Call("POST", "/api/queues/{}/unstick".format(_p(queue)), decoder(Unstuck), body=_body(olderThanMs=older_than_ms))


def remove_stuck(queue: str, older_than_ms: Optional[int] = None) -> Call[RemoveStuckJobs]:
    """POST /api/queues/{queue}/remove-stuck"""
    # Removing what is stuck twice removes nothing more the second time.
    return Call("POST", "/api/queues/{}/remove-stuck".format(_p(queue)), decoder(RemoveStuckJobs), body=_body(olderThanMs=older_than_ms), idempotent=True)


def queue_throughput(queue: str, window_min: Optional[int] = None) -> Call[QueueThroughput]:
    """GET /api/queues/{queue}/throughput"""
    return Call("GET", "/api/queues/{}/throughput".format(_p(queue)), decoder(QueueThroughput), query={"windowMin": window_min}, idempotent=True)


def slow_jobs(queue: str, limit: Optional[int] = None) -> Call[ListSlowJobs]:
    """GET /api/queues/{queue}/slow-jobs"""
    return Call("GET", "/api/queues/{}/slow-jobs".format(_p(queue)), decoder(ListSlowJobs), query={"limit": limit}, idempotent=True)


def get_concurrency(queue: str) -> Call[QueueConcurrency]:
    """GET /api/queues/{queue}/concurrency"""
    return Call("GET", "/api/queues/{}/concurrency".format(_p(queue)), decoder(QueueConcurrency), idempotent=True)


def scale_queue(queue: str, concurrency: int) -> Call[QueueConcurrency]:
    """PUT /api/queues/{queue}/concurrency"""
    body = {"concurrency": concurrency}
    return Call("PUT", "/api/queues/{}/concurrency".format(_p(queue)), decoder(QueueConcurrency), body=body, idempotent=True)


def reset_concurrency(queue: str) -> Call[QueueConcurrency]:
    """DELETE /api/queues/{queue}/concurrency"""
    return Call("DELETE", "/api/queues/{}/concurrency".format(_p(queue)), decoder(QueueConcurrency), idempotent=True)


def retry_failed(queue: str, error_contains: Optional[str] = None, limit: Optional[int] = None, dry_run: bool = False) -> Call[QueueRetried]:
    """POST /api/queues/{queue}/retry"""
    body = _body(errorContains=error_contains, limit=limit, dryRun=dry_run)
    return Call("POST", "/api/queues/{}/retry".format(_p(queue)), decoder(QueueRetried), body=body, idempotent=dry_run)


# -- metrics, workers, tenants ----------------------------------------------------------------------------


def queue_metrics() -> Call[QueueMetrics]:
    """GET /api/metrics/queues"""
    return Call("GET", "/api/metrics/queues", decoder(QueueMetrics), idempotent=True)


def system_metrics() -> Call[SystemMetrics]:
    """GET /api/metrics/system"""
    return Call("GET", "/api/metrics/system", decoder(SystemMetrics), idempotent=True)


def prometheus_metrics() -> Call[str]:
    """GET /metrics"""
    return Call("GET", "/metrics", str, idempotent=True, text=True)


def worker_status() -> Call[WorkerStatus]:
    """GET /api/workers"""
    return Call("GET", "/api/workers", decoder(WorkerStatus), idempotent=True)


def tenant_stats(tenant: Optional[str] = None) -> Call[List[TenantStats]]:
    """GET /api/tenants/stats"""
    return Call("GET", "/api/tenants/stats", list_decoder(TenantStats), query={"tenant": tenant}, idempotent=True)


def get_tenant_limit(tenant: str) -> Call[TenantLimit]:
    """GET /api/tenants/{tenant}/limits"""
    return Call("GET", "/api/tenants/{}/limits".format(_p(tenant)), decoder(TenantLimit), idempotent=True)


def set_tenant_limit(tenant: str, max_active: int, ttl_seconds: Optional[int] = None) -> Call[TenantLimit]:
    """PUT /api/tenants/{tenant}/limits"""
    body = _body(maxActive=max_active, ttlSeconds=ttl_seconds)
    return Call("PUT", "/api/tenants/{}/limits".format(_p(tenant)), decoder(TenantLimit), body=body, idempotent=True)


def reset_tenant_limit(tenant: str) -> Call[TenantLimit]:
    """DELETE /api/tenants/{tenant}/limits"""
    return Call("DELETE", "/api/tenants/{}/limits".format(_p(tenant)), decoder(TenantLimit), idempotent=True)


def throttle_tenant(
    tenant: str, max: int, per_ms: Optional[int] = None, ttl_seconds: Optional[int] = None, queue: Optional[str] = None
) -> Call[TenantLimit]:
    """PUT /api/tenants/{tenant}/throttle"""
    body = _body(max=max, perMs=per_ms, ttlSeconds=ttl_seconds, queue=queue)
    return Call("PUT", "/api/tenants/{}/throttle".format(_p(tenant)), decoder(TenantLimit), body=body, idempotent=True)


def reset_throttle(tenant: str) -> Call[TenantLimit]:
    """DELETE /api/tenants/{tenant}/throttle"""
    return Call("DELETE", "/api/tenants/{}/throttle".format(_p(tenant)), decoder(TenantLimit), idempotent=True)


# -- webhooks ---------------------------------------------------------------------------------------------


def create_webhook(url: str, events: Sequence[str]) -> Call[CreateWebhook]:
    """POST /api/webhooks"""
    # Not idempotent: a repeat would register a second webhook with a second secret.
    return Call("POST", "/api/webhooks", decoder(CreateWebhook), body={"url": url, "events": list(events)})


def list_webhooks() -> Call[List[Webhook]]:
    """GET /api/webhooks"""
    return Call("GET", "/api/webhooks", list_decoder(Webhook), idempotent=True)


def get_webhook(webhook_id: str) -> Call[Webhook]:
    """GET /api/webhooks/{id}"""
    return Call("GET", "/api/webhooks/" + _p(webhook_id), decoder(Webhook), idempotent=True)


def remove_webhook(webhook_id: str) -> Call[ScheduleRemoved]:
    """DELETE /api/webhooks/{id}"""
    return Call("DELETE", "/api/webhooks/" + _p(webhook_id), decoder(ScheduleRemoved), idempotent=True)


def rotate_webhook_secret(webhook_id: str) -> Call[RotateWebhookSecret]:
    """POST /api/webhooks/{id}/rotate-secret"""
    return Call("POST", "/api/webhooks/{}/rotate-secret".format(_p(webhook_id)), decoder(RotateWebhookSecret))


def webhook_deliveries(webhook_id: str) -> Call[List[WebhookDeliveryAttempt]]:
    """GET /api/webhooks/{id}/deliveries"""
    return Call("GET", "/api/webhooks/{}/deliveries".format(_p(webhook_id)), list_decoder(WebhookDeliveryAttempt), idempotent=True)
