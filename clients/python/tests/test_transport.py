"""Retries, errors, long polls and event streams, against a scripted HTTP server (no API needed)."""

import asyncio
import email.utils
import os
import threading
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Any, Dict, List
from unittest import mock

from jobs_api import (
    ApiError,
    AsyncJobsApi,
    ConflictError,
    JobCancelledError,
    JobEvent,
    JobExplanation,
    JobFailedError,
    JobsApi,
    JobSpec,
    ListSlowJobs,
    MissingTokenError,
    NotFoundError,
    QueueConcurrency,
    QueueThroughput,
    RefusedError,
    RemoveStuckJobs,
    RetryPolicy,
    TenantLimit,
    UnauthorizedError,
    UnavailableError,
    UnexpectedResponse,
    WaitTimeout,
)
from jobs_api._http import parse_retry_after

from support import ScriptedServer, close_without_answer, error, event_stream, job, ok, sse

FAST = RetryPolicy(retries=3, base=0.01, cap=0.05)


class ScriptedTest(unittest.TestCase):
    def serve(self, *answers: Any) -> ScriptedServer:
        server = ScriptedServer(list(answers))
        self.addCleanup(server.stop)
        return server

    def api(self, server: ScriptedServer, retry: RetryPolicy = FAST) -> JobsApi:
        return JobsApi(server.url, "tok", timeout=5, retry=retry)


class RetryTest(ScriptedTest):
    def test_retries_503_and_429_honouring_retry_after(self) -> None:
        server = self.serve(
            error(503, "REDIS_UNAVAILABLE", headers={"Retry-After": "0.2"}),
            error(429, "RATE_LIMITED", headers={"Retry-After": "0"}),
            ok(job()),
        )
        started = time.monotonic()
        self.assertEqual(self.api(server).get_job("scan_abc").state, "completed")
        self.assertGreaterEqual(time.monotonic() - started, 0.2)
        self.assertEqual(len(server.seen), 3)
        self.assertEqual(server.seen[0].headers["authorization"], "Bearer tok")

    def test_a_retried_enqueue_keeps_its_idempotency_key(self) -> None:
        submitted = {"jobId": "scan_x", "queue": "scan", "type": "scan:quick", "state": "waiting"}
        server = self.serve(error(503, "REDIS_UNAVAILABLE"), close_without_answer, ok(submitted, 202))
        self.assertEqual(self.api(server).submit("scan:quick", {"serverId": "web"}, priority=2).job_id, "scan_x")
        keys = [s.headers.get("idempotency-key") for s in server.seen]
        self.assertEqual(len(keys), 3)
        self.assertTrue(keys[0])
        self.assertEqual(len(set(keys)), 1)
        self.assertEqual(server.seen[0].json(), {"type": "scan:quick", "data": {"serverId": "web"}, "options": {"priority": 2}})

    def test_a_request_that_is_not_idempotent_is_not_sent_again_after_a_lost_answer_or_a_502(self) -> None:
        server = self.serve(close_without_answer, ok({"jobId": "x", "state": "waiting"}))
        with self.assertRaises(UnavailableError) as caught:
            self.api(server).retry_job("update_x")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, "UNREACHABLE"))
        self.assertIn("may have been carried out", caught.exception.message)
        self.assertEqual(len(server.seen), 1)
        server = self.serve(error(502, "BAD_GATEWAY"), ok({"jobId": "x", "state": "waiting"}))
        with self.assertRaises(UnavailableError):
            self.api(server).cancel_job("update_x")
        self.assertEqual(len(server.seen), 1)
        # ... but it is after a 503 or 429, which say the API did not act on it.
        server = self.serve(error(503, "REDIS_UNAVAILABLE"), ok({"jobId": "x", "state": "waiting"}))
        self.assertEqual(self.api(server).retry_job("update_x").state, "waiting")

    def test_an_idempotent_request_is_sent_again_after_a_lost_answer_502_and_504(self) -> None:
        server = self.serve(close_without_answer, error(502, "X"), error(504, "X"), ok(job()))
        self.assertEqual(self.api(server).get_job("scan_abc").id, "scan_abc")
        self.assertEqual(len(server.seen), 4)

    def test_gives_up_after_the_retries_with_the_last_error(self) -> None:
        server = self.serve(error(503, "REDIS_UNAVAILABLE", "Redis is away"))
        with self.assertRaises(UnavailableError) as caught:
            self.api(server).get_job("scan_abc")
        self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.request_id), (503, "REDIS_UNAVAILABLE", "req-503"))
        self.assertEqual(len(server.seen), 4)

    def test_a_retry_after_longer_than_allowed_is_not_waited_for(self) -> None:
        server = self.serve(error(429, "RATE_LIMITED", headers={"Retry-After": "600"}), ok(job()))
        with self.assertRaises(RefusedError) as caught:
            self.api(server).get_job("scan_abc")
        self.assertEqual(caught.exception.retry_after, 600.0)
        self.assertEqual(len(server.seen), 1)

    def test_does_not_retry_other_errors_and_maps_them_to_classes(self) -> None:
        for status, code, cls in ((400, "VALIDATION_ERROR", RefusedError), (404, "JOB_NOT_FOUND", NotFoundError), (409, "JOB_ACTIVE", ConflictError),
                                  (401, "TOKEN_EXPIRED", UnauthorizedError), (403, "FORBIDDEN", UnauthorizedError), (500, "INTERNAL", UnavailableError)):
            server = self.serve(error(status, code, "because"))
            with self.assertRaises(cls) as caught:
                self.api(server).remove_job("scan_abc")
            err = caught.exception
            self.assertEqual((err.status, err.code, err.message, err.request_id), (status, code, "because", "req-{}".format(status)))
            self.assertEqual(len(server.seen), 1, code)

    def test_bulk_errors_list_each_bad_item(self) -> None:
        details = [{"index": 1, "code": "VALIDATION_ERROR", "message": "jobs[1].data.serverId: required"}]
        server = self.serve(error(400, "BULK_INVALID", "1 of 2 jobs is invalid", details=details))
        with self.assertRaises(RefusedError) as caught:
            self.api(server).submit_bulk([JobSpec("scan:quick", {"serverId": "a"}), {"type": "scan:quick", "data": {}}])
        self.assertEqual([(d.index, d.code) for d in caught.exception.details], [(1, "VALIDATION_ERROR")])
        self.assertEqual(server.seen[0].json(), {"jobs": [{"type": "scan:quick", "data": {"serverId": "a"}}, {"type": "scan:quick", "data": {}}]})

    def test_an_unreachable_api_is_retried_then_unavailable(self) -> None:
        api = JobsApi("http://127.0.0.1:9", "tok", retry=RetryPolicy(retries=2, base=0.01))
        with mock.patch("time.sleep") as slept:
            with self.assertRaises(UnavailableError) as caught:
                api.get_job("scan_abc")
        self.assertEqual((caught.exception.status, caught.exception.code), (0, "UNREACHABLE"))
        self.assertIn("cannot reach", caught.exception.message)
        self.assertEqual(slept.call_count, 2)

    def test_answers_that_are_not_the_envelope_are_unexpected(self) -> None:
        server = self.serve((200, {"Content-Type": "text/html"}, b"<html>"))
        with self.assertRaisesRegex(UnexpectedResponse, "not JSON"):
            self.api(server).get_job("scan_abc")
        server = self.serve(ok({"jobs": "nope", "nextCursor": None}))
        with self.assertRaisesRegex(UnexpectedResponse, "JobPage.jobs: expected a list"):
            self.api(server).list_jobs()

    def test_a_redirect_is_refused_so_the_token_never_goes_elsewhere(self) -> None:
        elsewhere = self.serve(ok(job()))
        server = self.serve((302, {"Location": elsewhere.url + "/api/jobs/scan_abc"}, b""))
        with self.assertRaises(ApiError) as caught:
            self.api(server).get_job("scan_abc")
        self.assertEqual(caught.exception.status, 302)
        self.assertEqual(elsewhere.seen, [])

    def test_query_parameters_and_paths(self) -> None:
        server = self.serve(ok({"jobs": [], "nextCursor": None}))
        self.api(server).list_jobs(queue="scan", state="failed", limit=5)
        self.assertEqual(server.seen[0].path, "/api/jobs?queue=scan&state=failed&limit=5")
        server = self.serve(ok({"queue": "scan", "dryRun": True, "matched": 0, "retried": 0, "jobs": []}))
        self.api(server).retry_failed("scan", error_contains="timeout", dry_run=True)
        self.assertEqual((server.seen[0].path, server.seen[0].json()), ("/api/queues/scan/retry", {"errorContains": "timeout", "dryRun": True}))
        server = self.serve(ok(job()))
        self.api(server).get_job("a/b c")
        self.assertEqual(server.seen[0].path, "/api/jobs/a%2Fb%20c")


EXPLANATION: Dict[str, Any] = {
    "jobId": "scan_abc", "queue": "scan", "state": "delayed", "held": True, "summary": "it is delayed and not running",
    "attempts": 0, "maxAttempts": 3, "failedReason": None,
    "reasons": [
        {"code": "DELAYED", "message": "it is delayed until 2026-12-01T00:00:00.000Z", "until": "2026-12-01T00:00:00.000Z"},
        {"code": "TENANT_AT_CAP", "message": "tenant t has 1 of its 1 active scan job running", "queue": "scan", "tenant": "t",
         "cap": 1, "active": 1, "holders": ["scan_other"]},
    ],
}


class NewRoutesTest(ScriptedTest):
    """explain_job, the list filters (server, creation time) and the job options timeout_sec, backoff_ms, backoff_max_ms."""

    def test_explain_job(self) -> None:
        server = self.serve(ok(EXPLANATION))
        explained = self.api(server).explain_job("scan_abc")
        self.assertEqual((server.seen[0].method, server.seen[0].path), ("GET", "/api/jobs/scan_abc/explain"))
        self.assertIsInstance(explained, JobExplanation)
        self.assertEqual((explained.job_id, explained.held, explained.max_attempts), ("scan_abc", True, 3))
        self.assertEqual([r.code for r in explained.reasons], ["DELAYED", "TENANT_AT_CAP"])
        self.assertEqual(explained.reasons[0].until, "2026-12-01T00:00:00.000Z")
        self.assertEqual((explained.reasons[1].holders, explained.reasons[1].server_id), (["scan_other"], None))
        self.assertEqual(explained.to_dict(), EXPLANATION)

    def test_explain_is_retried_as_a_read(self) -> None:
        server = self.serve(close_without_answer, error(502, "BAD_GATEWAY"), ok(EXPLANATION))
        self.assertTrue(self.api(server).explain_job("scan_abc").held)
        self.assertEqual(len(server.seen), 3)

    def test_list_by_server_and_creation_time_sends_iso_8601_with_a_time_zone(self) -> None:
        server = self.serve(ok({"jobs": [], "nextCursor": None}))
        api = self.api(server)
        paris = timezone(timedelta(hours=1))
        api.list_jobs(server_id="web-1", created_after=datetime(2026, 12, 1, 1, 30, 0, 123456, tzinfo=paris), created_before="2026-12-02T00:00:00+01:00")
        self.assertEqual(
            server.seen[0].path,
            "/api/jobs?serverId=web-1&createdAfter=2026-12-01T00%3A30%3A00.123Z&createdBefore=2026-12-02T00%3A00%3A00%2B01%3A00",
        )
        api.list_jobs(created_before=datetime(2026, 12, 1, tzinfo=timezone.utc), state="failed")
        self.assertEqual(server.seen[1].path, "/api/jobs?state=failed&createdBefore=2026-12-01T00%3A00%3A00.000Z")

    def test_a_naive_datetime_or_a_time_without_a_zone_is_refused_before_anything_is_sent(self) -> None:
        server = self.serve(ok({"jobs": [], "nextCursor": None}))
        api = self.api(server)
        with self.assertRaisesRegex(ValueError, "created_after: pass a timezone-aware datetime"):
            api.list_jobs(created_after=datetime(2026, 12, 1))
        with self.assertRaisesRegex(ValueError, "created_before: expected ISO 8601 with a time zone"):
            api.list_jobs(created_before="2026-12-01T00:00:00")
        with self.assertRaisesRegex(ValueError, "created_before"):
            api.list_jobs(created_before="yesterday")
        with self.assertRaisesRegex(ValueError, "created_after: pass a timezone-aware datetime"):
            next(api.iter_jobs(created_after=datetime.now()))
        self.assertEqual(server.seen, [])

    def test_iter_jobs_sends_the_same_filters_with_each_cursor(self) -> None:
        server = self.serve(ok({"jobs": [job("scan_a")], "nextCursor": "c1"}), ok({"jobs": [job("scan_b")], "nextCursor": None}))
        since = datetime(2026, 12, 1, tzinfo=timezone.utc)
        ids = [j.id for j in self.api(server).iter_jobs(server_id="web-1", created_after=since, page_size=1)]
        self.assertEqual(ids, ["scan_a", "scan_b"])
        self.assertEqual(
            [s.path for s in server.seen],
            [
                "/api/jobs?serverId=web-1&createdAfter=2026-12-01T00%3A00%3A00.000Z&limit=1",
                "/api/jobs?serverId=web-1&createdAfter=2026-12-01T00%3A00%3A00.000Z&limit=1&cursor=c1",
            ],
        )

    def test_timeout_and_backoff_options_of_every_enqueue(self) -> None:
        # One answer that reads as each enqueue's (a model ignores the fields it does not know).
        started = {"jobId": "x", "queue": "scan", "type": "scan:quick", "state": "waiting", "status": "pending",
                   "backupId": "b1", "scanId": "s1", "updateId": "u1", "restoreId": "r1"}
        server = self.serve(ok(started, 202))
        api = self.api(server)
        api.submit("scan:quick", {"serverId": "web"}, priority=2, timeout_sec=30, backoff_ms=500, backoff_max_ms=60000)
        self.assertEqual(
            server.seen[-1].json()["options"], {"priority": 2, "timeoutSec": 30, "backoffMs": 500, "backoffMaxMs": 60000}
        )
        api.backup("web", timeout_sec=7200, attempts=2)
        self.assertEqual(server.seen[-1].json(), {"options": {"attempts": 2, "timeoutSec": 7200}})
        api.scan("web", scan_type="quick", backoff_ms=100)
        self.assertEqual(server.seen[-1].json(), {"scan_type": "quick", "options": {"backoffMs": 100}})
        api.update("web", backoff_max_ms=1000)
        self.assertEqual(server.seen[-1].json(), {"options": {"backoffMaxMs": 1000}})
        api.restore("web", "b1", timeout_sec=60)
        self.assertEqual((server.seen[-1].path, server.seen[-1].json()), ("/api/servers/web/backups/b1/restore", {"options": {"timeoutSec": 60}}))
        api.update("web")
        self.assertEqual(server.seen[-1].json(), {})

    def test_job_spec_keeps_its_positional_order_and_takes_the_new_options_by_name(self) -> None:
        self.assertEqual(
            JobSpec("scan:quick", {"serverId": "web"}, 1, 5000, 2).to_dict(),
            {"type": "scan:quick", "data": {"serverId": "web"}, "options": {"priority": 1, "delay": 5000, "attempts": 2}},
        )
        spec = JobSpec("scan:quick", {"serverId": "web"}, attempts=3, timeout_sec=60, backoff_ms=200, backoff_max_ms=400)
        self.assertEqual(spec.to_dict()["options"], {"attempts": 3, "timeoutSec": 60, "backoffMs": 200, "backoffMaxMs": 400})
        self.assertEqual(JobSpec("scan:quick", {"serverId": "web"}).to_dict(), {"type": "scan:quick", "data": {"serverId": "web"}})
        server = self.serve(ok({"count": 1, "jobs": []}, 202))
        self.api(server).submit_bulk([spec])
        self.assertEqual(server.seen[0].json()["jobs"][0]["options"]["timeoutSec"], 60)


THROUGHPUT: Dict[str, Any] = {
    "queue": "scan", "windowMin": 2, "from": "2026-12-01T00:00:00.000Z", "to": "2026-12-01T00:01:30.000Z",
    "total": {"completed": 5, "failed": 1, "cancelled": 0},
    "perMinute": {"completed": 2.5, "failed": 0.5, "cancelled": 0},
    "buckets": [
        {"minute": "2026-12-01T00:00:00.000Z", "completed": 3, "failed": 1, "cancelled": 0},
        {"minute": "2026-12-01T00:01:00.000Z", "completed": 2, "failed": 0, "cancelled": 0},
    ],
}
SLOW_JOBS: Dict[str, Any] = {
    "queue": "scan", "scanned": 2,
    "jobs": [{"jobId": "scan_a", "type": "scan:full", "state": "completed", "serverId": "web-1", "tenant": "t", "durationMs": 4200,
              "startedAt": "2026-12-01T00:00:00.000Z", "finishedAt": "2026-12-01T00:00:04.200Z"},
             {"jobId": "scan_b", "type": "scan:quick", "state": "failed", "serverId": None, "tenant": "t", "durationMs": 10,
              "startedAt": "2026-12-01T00:00:00.000Z", "finishedAt": "2026-12-01T00:00:00.010Z"}],
}
CONCURRENCY: Dict[str, Any] = {
    "queue": "scan", "configured": 2, "override": 6, "concurrency": 6, "followWithinMs": 2000,
    "processes": [{"id": "w1", "host": "h", "pid": 42, "concurrency": 6}], "total": 6,
}
THROTTLED: Dict[str, Any] = {
    "tenant": "t", "default": 5, "override": None, "overrideExpiresAt": None, "effective": {"backup": 1, "scan": 1, "update": 1},
    "throttle": {"max": 10, "perMs": 5000, "queues": ["scan"], "expiresAt": "2026-12-01T01:00:00.000Z", "started": {"scan": 3}},
}


class AdminRoutesTest(ScriptedTest):
    """remove_stuck, queue_throughput, slow_jobs, the queue's concurrency, the tenant's throttle, drain with delay_ms."""

    def test_remove_stuck(self) -> None:
        server = self.serve(ok({"queue": "update", "removed": 1, "jobs": ["update_a"]}))
        api = self.api(server)
        removed = api.remove_stuck("update", older_than_ms=60000)
        self.assertIsInstance(removed, RemoveStuckJobs)
        self.assertEqual((removed.queue, removed.removed, removed.jobs), ("update", 1, ["update_a"]))
        api.remove_stuck("update")
        self.assertEqual([(s.method, s.path, s.json()) for s in server.seen], [
            ("POST", "/api/queues/update/remove-stuck", {"olderThanMs": 60000}),
            ("POST", "/api/queues/update/remove-stuck", {}),
        ])

    def test_remove_stuck_is_sent_again_after_a_lost_answer(self) -> None:
        server = self.serve(close_without_answer, error(502, "BAD_GATEWAY"), ok({"queue": "update", "removed": 0, "jobs": []}))
        self.assertEqual(self.api(server).remove_stuck("update").removed, 0)
        self.assertEqual(len(server.seen), 3)

    def test_queue_throughput(self) -> None:
        server = self.serve(ok(THROUGHPUT))
        api = self.api(server)
        throughput = api.queue_throughput("scan", window_min=2)
        self.assertIsInstance(throughput, QueueThroughput)
        self.assertEqual((throughput.window_min, throughput.from_, throughput.total.completed, throughput.per_minute.failed), (2, "2026-12-01T00:00:00.000Z", 5, 0.5))
        self.assertEqual([b.completed for b in throughput.buckets], [3, 2])
        self.assertEqual(throughput.to_dict(), THROUGHPUT)
        api.queue_throughput("scan")
        self.assertEqual([(s.method, s.path, s.body) for s in server.seen], [
            ("GET", "/api/queues/scan/throughput?windowMin=2", b""),
            ("GET", "/api/queues/scan/throughput", b""),
        ])

    def test_slow_jobs(self) -> None:
        server = self.serve(ok(SLOW_JOBS))
        api = self.api(server)
        slow = api.slow_jobs("scan", limit=2)
        self.assertIsInstance(slow, ListSlowJobs)
        self.assertEqual(slow.scanned, 2)
        self.assertEqual([(j.job_id, j.state, j.server_id, j.duration_ms) for j in slow.jobs], [("scan_a", "completed", "web-1", 4200), ("scan_b", "failed", None, 10)])
        self.assertEqual(slow.to_dict(), SLOW_JOBS)
        api.slow_jobs("scan")
        self.assertEqual([(s.method, s.path) for s in server.seen], [("GET", "/api/queues/scan/slow-jobs?limit=2"), ("GET", "/api/queues/scan/slow-jobs")])

    def test_get_scale_and_reset_the_concurrency(self) -> None:
        reset = dict(CONCURRENCY, override=None, concurrency=2, processes=[{"id": "w1", "host": "h", "pid": 42, "concurrency": 2}], total=2)
        server = self.serve(ok(CONCURRENCY), ok(CONCURRENCY), ok(reset))
        api = self.api(server)
        got = api.get_concurrency("scan")
        self.assertIsInstance(got, QueueConcurrency)
        self.assertEqual((got.configured, got.override, got.concurrency, got.follow_within_ms, got.total), (2, 6, 6, 2000, 6))
        self.assertEqual([(p.id, p.pid, p.concurrency) for p in got.processes], [("w1", 42, 6)])
        self.assertEqual(api.scale_queue("scan", 6).override, 6)
        after = api.reset_concurrency("scan")
        self.assertEqual((after.override, after.concurrency, after.total), (None, 2, 2))
        self.assertEqual([(s.method, s.path, s.body and s.json()) for s in server.seen], [
            ("GET", "/api/queues/scan/concurrency", b""),
            ("PUT", "/api/queues/scan/concurrency", {"concurrency": 6}),
            ("DELETE", "/api/queues/scan/concurrency", b""),
        ])

    def test_scaling_is_sent_again_after_a_lost_answer(self) -> None:
        server = self.serve(close_without_answer, ok(CONCURRENCY))
        self.assertEqual(self.api(server).scale_queue("scan", 6).concurrency, 6)
        self.assertEqual([s.json() for s in server.seen], [{"concurrency": 6}] * 2)

    def test_throttle_and_reset_a_tenant(self) -> None:
        server = self.serve(ok(THROTTLED), ok(THROTTLED), ok(dict(THROTTLED, throttle=None)))
        api = self.api(server)
        throttled = api.throttle_tenant("t", 10, per_ms=5000, ttl_seconds=3600, queue="scan")
        self.assertIsInstance(throttled, TenantLimit)
        assert throttled.throttle is not None
        self.assertEqual((throttled.throttle.max, throttled.throttle.per_ms, throttled.throttle.queues, throttled.throttle.started), (10, 5000, ["scan"], {"scan": 3}))
        self.assertEqual(throttled.to_dict(), THROTTLED)
        api.throttle_tenant("t", 10)
        self.assertIsNone(api.reset_throttle("t").throttle)
        self.assertEqual([(s.method, s.path, s.body and s.json()) for s in server.seen], [
            ("PUT", "/api/tenants/t/throttle", {"max": 10, "perMs": 5000, "ttlSeconds": 3600, "queue": "scan"}),
            ("PUT", "/api/tenants/t/throttle", {"max": 10}),
            ("DELETE", "/api/tenants/t/throttle", b""),
        ])

    def test_drain_keeps_its_signature_and_moves_the_waiting_jobs_with_delay_ms(self) -> None:
        moved = {"queue": "scan", "removed": {"waiting": 0, "delayed": 0}, "movedToDelayed": 4, "delayedUntil": "2026-12-01T01:00:00.000Z"}
        server = self.serve(ok({"queue": "scan", "removed": {"waiting": 2, "delayed": 1}}), ok({"queue": "scan", "removed": {"waiting": 2, "delayed": 0}}), ok(moved))
        api = self.api(server)
        drained = api.drain_queue("scan", delayed=True)
        self.assertEqual((drained.removed.waiting, drained.removed.delayed, drained.moved_to_delayed, drained.delayed_until), (2, 1, None, None))
        api.drain_queue("scan")
        drained = api.drain_queue("scan", delay_ms=3600000)
        self.assertEqual((drained.removed.waiting, drained.moved_to_delayed, drained.delayed_until), (0, 4, "2026-12-01T01:00:00.000Z"))
        self.assertEqual([(s.method, s.path, s.json()) for s in server.seen], [
            ("POST", "/api/queues/scan/drain", {"delayed": True}),
            ("POST", "/api/queues/scan/drain", {"delayed": False}),
            ("POST", "/api/queues/scan/drain", {"delayed": False, "delayMs": 3600000}),
        ])
        with self.assertRaisesRegex(ValueError, "delay_ms"):
            api.drain_queue("scan", delayed=True, delay_ms=3600000)
        self.assertEqual(len(server.seen), 3)

    def test_a_drain_is_not_sent_again_after_a_lost_answer(self) -> None:
        server = self.serve(close_without_answer, ok({"queue": "scan", "removed": {"waiting": 0, "delayed": 0}}))
        with self.assertRaises(UnavailableError):
            self.api(server).drain_queue("scan", delay_ms=60000)
        self.assertEqual(len(server.seen), 1)

    def test_the_async_client_sends_the_same_calls(self) -> None:
        server = self.serve(
            ok({"queue": "update", "removed": 0, "jobs": []}), ok(THROUGHPUT), ok(SLOW_JOBS), ok(CONCURRENCY), ok(CONCURRENCY), ok(CONCURRENCY),
            ok(THROTTLED), ok(THROTTLED), ok({"queue": "scan", "removed": {"waiting": 0, "delayed": 0}, "movedToDelayed": 0, "delayedUntil": "x"}),
        )

        async def run() -> None:
            api = AsyncJobsApi(server.url, "tok", retry=FAST)
            self.assertEqual((await api.remove_stuck("update", older_than_ms=1000)).removed, 0)
            self.assertEqual((await api.queue_throughput("scan", window_min=2)).window_min, 2)
            self.assertEqual(len((await api.slow_jobs("scan", limit=2)).jobs), 2)
            self.assertEqual((await api.get_concurrency("scan")).configured, 2)
            self.assertEqual((await api.scale_queue("scan", 6)).override, 6)
            self.assertEqual((await api.reset_concurrency("scan")).queue, "scan")
            self.assertEqual((await api.throttle_tenant("t", 10, queue="scan")).tenant, "t")
            self.assertEqual((await api.reset_throttle("t")).tenant, "t")
            self.assertEqual((await api.drain_queue("scan", delay_ms=1000)).moved_to_delayed, 0)

        asyncio.run(run())
        self.assertEqual([(s.method, s.path, s.body and s.json()) for s in server.seen], [
            ("POST", "/api/queues/update/remove-stuck", {"olderThanMs": 1000}),
            ("GET", "/api/queues/scan/throughput?windowMin=2", b""),
            ("GET", "/api/queues/scan/slow-jobs?limit=2", b""),
            ("GET", "/api/queues/scan/concurrency", b""),
            ("PUT", "/api/queues/scan/concurrency", {"concurrency": 6}),
            ("DELETE", "/api/queues/scan/concurrency", b""),
            ("PUT", "/api/tenants/t/throttle", {"max": 10, "queue": "scan"}),
            ("DELETE", "/api/tenants/t/throttle", b""),
            ("POST", "/api/queues/scan/drain", {"delayed": False, "delayMs": 1000}),
        ])


class PolicyTest(unittest.TestCase):
    def test_full_jitter_between_zero_and_the_exponential_cap(self) -> None:
        self.assertEqual(RetryPolicy(base=0.5, cap=30, random=lambda: 0.0).backoff(5), 0.0)
        top = RetryPolicy(base=0.5, cap=30, random=lambda: 1.0)
        self.assertEqual([top.backoff(n) for n in range(8)], [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0])
        waits = [RetryPolicy(base=1.0, cap=100).backoff(3) for _ in range(200)]
        self.assertTrue(all(0 <= w <= 8 for w in waits))
        self.assertGreater(len(set(waits)), 150)

    def test_which_answers_are_retried(self) -> None:
        policy = RetryPolicy(retries=2, random=lambda: 1.0)
        self.assertEqual(policy.after_status(0, 503, 3.0, False), 3.0)
        self.assertEqual(policy.after_status(1, 429, None, False), 1.0)
        self.assertIsNone(policy.after_status(2, 503, None, True))
        self.assertIsNone(policy.after_status(0, 502, None, False))
        self.assertEqual(policy.after_status(0, 504, None, True), 0.5)
        self.assertIsNone(policy.after_status(0, 500, None, True))
        self.assertIsNone(policy.after_status(0, 409, None, True))

    def test_retry_after_in_seconds_or_as_a_date(self) -> None:
        self.assertEqual(parse_retry_after("5"), 5.0)
        when = email.utils.formatdate(time.time() + 30, usegmt=True)
        self.assertAlmostEqual(parse_retry_after(when) or 0, 30, delta=2)
        self.assertIsNone(parse_retry_after("soon"))
        self.assertIsNone(parse_retry_after(None))


class SettingsTest(unittest.TestCase):
    def test_url_and_token_come_from_the_environment(self) -> None:
        with mock.patch.dict(os.environ, {"JOBS_API_URL": "http://example.invalid:1234/", "JOBS_API_TOKEN": "env-token"}):
            api = JobsApi()
            self.assertEqual(api.base_url, "http://example.invalid:1234")
            self.assertEqual(api._transport.token, "env-token")
            self.assertEqual(AsyncJobsApi().base_url, "http://example.invalid:1234")
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(JobsApi(token="t").base_url, "http://localhost:3000")
            with self.assertRaises(MissingTokenError):
                JobsApi()


class WaitTest(ScriptedTest):
    def test_waits_with_the_long_poll_and_answers_the_completed_job(self) -> None:
        server = self.serve(ok(job(state="waiting", progress=0)), ok(job(state="active", progress=50)), ok(job(state="completed")))
        self.assertEqual(self.api(server).wait("scan_abc").state, "completed")
        self.assertEqual([s.path for s in server.seen], ["/api/jobs/scan_abc"] + ["/api/jobs/scan_abc?waitMs=30000"] * 2)

    def test_a_failed_job_raises_with_its_reason(self) -> None:
        server = self.serve(ok(job(state="failed", failed_reason="exited with code 5")))
        with self.assertRaises(JobFailedError) as caught:
            self.api(server).wait("scan_abc")
        self.assertNotIsInstance(caught.exception, JobCancelledError)
        self.assertEqual((caught.exception.reason, caught.exception.job.state), ("exited with code 5", "failed"))

    def test_a_job_cancelled_while_it_ran_raises_job_cancelled_error_a_job_failed_error(self) -> None:
        server = self.serve(ok(job(state="active", progress=40)), ok(job(state="cancelled", progress=40, failed_reason="cancelled")))
        with self.assertRaises(JobCancelledError) as caught:
            self.api(server).wait("scan_abc", timeout=10)
        self.assertIsInstance(caught.exception, JobFailedError)
        self.assertEqual((caught.exception.reason, caught.exception.job.state, caught.exception.job_id), ("cancelled", "cancelled", "scan_abc"))
        self.assertEqual(str(caught.exception), "job scan_abc was cancelled")

    def test_the_last_slice_waits_only_what_is_left_then_times_out(self) -> None:
        server = self.serve(ok(job(state="active", progress=10)))
        with self.assertRaises(WaitTimeout) as caught:
            self.api(server).wait("scan_abc", timeout=0.4)
        self.assertEqual(caught.exception.job.progress, 10)
        wait = int(server.seen[1].path.split("waitMs=")[1])
        self.assertTrue(0 < wait <= 400, wait)

    def test_progress_is_reported_with_short_slices(self) -> None:
        server = self.serve(ok(job(state="active", progress=10)), ok(job(state="active", progress=10)), ok(job(state="active", progress=60)), ok(job()))
        seen: List[float] = []
        self.api(server).wait("scan_abc", on_progress=lambda j: seen.append(j.progress))
        self.assertEqual(seen, [10, 60, 100])
        self.assertTrue(server.seen[1].path.endswith("waitMs=1000"))


class WatchTest(ScriptedTest):
    SNAPSHOT = sse("snapshot", "0", job("update_a", state="active", progress=10))

    def test_reconnects_with_the_last_event_id_and_stops_after_the_terminal_event(self) -> None:
        server = self.serve(
            event_stream(self.SNAPSHOT, sse("log", "1", {"index": 0, "line": "one"})),  # then the connection drops
            error(503, "REDIS_UNAVAILABLE", headers={"Retry-After": "0"}),
            event_stream(self.SNAPSHOT, sse("log", "2", {"index": 1, "line": "two"}), sse("completed", "2-end", job("update_a"))),
            event_stream(sse("log", "9", {"index": 8, "line": "never read"})),
        )
        events = list(self.api(server).watch("update_a"))
        self.assertEqual([e.event for e in events], ["snapshot", "log", "snapshot", "log", "completed"])
        self.assertEqual([e.line for e in events if e.line], ["one", "two"])
        self.assertEqual([s.headers.get("last-event-id") for s in server.seen], [None, "1", "1"])
        self.assertEqual(server.seen[0].headers["accept"], "text/event-stream")
        self.assertEqual(events[-1].id, "2-end")

    def test_a_cancelled_event_ends_the_stream(self) -> None:
        cancelled = job("update_a", state="cancelled", progress=10, failed_reason="cancelled")
        server = self.serve(
            event_stream(self.SNAPSHOT, sse("log", "1", {"index": 0, "line": "one"}), sse("cancelled", "1-end", cancelled), sse("log", "2", {"index": 1, "line": "never"})),
            event_stream(sse("log", "9", {"index": 8, "line": "never read"})),
        )
        events = list(self.api(server).watch("update_a"))
        self.assertEqual([e.event for e in events], ["snapshot", "log", "cancelled"])
        self.assertTrue(events[-1].terminal)
        last = events[-1].job
        assert last is not None
        self.assertEqual((last.state, last.failed_reason, events[-1].progress), ("cancelled", "cancelled", 10.0))
        self.assertEqual(len(server.seen), 1)  # not reopened

    def test_a_204_for_a_job_whose_end_was_seen_ends_the_iteration(self) -> None:
        server = self.serve(event_stream(status=204))
        self.assertEqual(list(self.api(server).watch("update_a", last_event_id="5-end")), [])
        self.assertEqual(server.seen[0].headers["last-event-id"], "5-end")

    def test_errors_are_raised(self) -> None:
        server = self.serve(error(404, "JOB_NOT_FOUND"))
        with self.assertRaises(NotFoundError):
            list(self.api(server).watch("update_a"))

    def test_a_stream_that_keeps_ending_early_gives_up_after_the_retries(self) -> None:
        server = self.serve(event_stream())
        with self.assertRaises(UnavailableError):
            list(self.api(server).watch("update_a"))
        self.assertEqual(len(server.seen), 4)


class AsyncTest(ScriptedTest):
    def test_the_same_calls_retries_and_errors(self) -> None:
        server = self.serve(error(503, "REDIS_UNAVAILABLE", headers={"Retry-After": "0"}), ok(job()), error(409, "JOB_ACTIVE"))

        async def run() -> None:
            async with AsyncJobsApi(server.url, "tok", retry=FAST) as api:
                self.assertEqual((await api.get_job("scan_abc")).state, "completed")
                with self.assertRaises(ConflictError):
                    await api.remove_job("scan_abc")

        asyncio.run(run())
        self.assertEqual(len(server.seen), 3)

    def test_watch_wait_and_cancelling_a_long_poll(self) -> None:
        def hold(handler: Any) -> None:
            time.sleep(3)
            close_without_answer(handler)

        server = self.serve(
            event_stream(self.SNAPSHOT_ACTIVE, sse("completed", "0-end", job("update_a"))),
            ok(job("update_a", state="failed", failed_reason="boom")),
            hold,
        )

        async def run() -> None:
            api = AsyncJobsApi(server.url, "tok", retry=FAST)
            events = [e async for e in api.watch("update_a")]
            self.assertEqual([e.event for e in events], ["snapshot", "completed"])
            with self.assertRaises(JobFailedError):
                await api.wait("update_a")
            started = time.monotonic()
            with self.assertRaises(asyncio.TimeoutError):
                await asyncio.wait_for(api.wait("update_a"), 0.3)
            self.assertLess(time.monotonic() - started, 1.5)

        started = time.monotonic()
        asyncio.run(run())
        # The cancelled attempt's thread does not hold the program (nor asyncio.run) until it ends.
        self.assertLess(time.monotonic() - started, 2.5)

    SNAPSHOT_ACTIVE = sse("snapshot", "0", job("update_a", state="active", progress=10))

    def test_cancelled_ends_the_wait_and_the_watch_and_the_new_calls(self) -> None:
        cancelled = job("update_a", state="cancelled", progress=10, failed_reason="cancelled")
        server = self.serve(
            event_stream(self.SNAPSHOT_ACTIVE, sse("cancelled", "0-end", cancelled)),
            ok(job("update_a", state="active", progress=10)),
            ok(cancelled),
            ok(EXPLANATION),
            ok({"jobs": [job("scan_a")], "nextCursor": None}),
        )

        async def run() -> None:
            api = AsyncJobsApi(server.url, "tok", retry=FAST)
            events = [e async for e in api.watch("update_a")]
            self.assertEqual([e.event for e in events], ["snapshot", "cancelled"])
            with self.assertRaises(JobCancelledError) as caught:
                await api.wait("update_a", timeout=10)
            self.assertEqual(caught.exception.reason, "cancelled")
            self.assertEqual([r.code for r in (await api.explain_job("scan_abc")).reasons], ["DELAYED", "TENANT_AT_CAP"])
            since = datetime(2026, 12, 1, tzinfo=timezone.utc)
            self.assertEqual([j.id async for j in api.iter_jobs(server_id="web-1", created_after=since, created_before="2026-12-02T00:00:00Z")], ["scan_a"])
            with self.assertRaisesRegex(ValueError, "timezone-aware"):
                await api.list_jobs(created_before=datetime(2026, 12, 1))

        asyncio.run(run())
        self.assertEqual(server.seen[3].path, "/api/jobs/scan_abc/explain")
        self.assertEqual(server.seen[4].path, "/api/jobs?serverId=web-1&createdAfter=2026-12-01T00%3A00%3A00.000Z&createdBefore=2026-12-02T00%3A00%3A00Z&limit=100")
        self.assertEqual(len(server.seen), 5)

    def test_closing_a_watch_stops_its_reader_at_once(self) -> None:
        def quiet_stream(handler: Any) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "text/event-stream")
            handler.end_headers()
            handler.wfile.write((self.SNAPSHOT_ACTIVE + "\n\n").encode())
            handler.wfile.flush()
            time.sleep(5)  # a job that is quiet for a while

        server = self.serve(quiet_stream)

        async def run() -> JobEvent:
            api = AsyncJobsApi(server.url, "tok", retry=FAST)
            stream = api.watch("update_a")
            first = await stream.__anext__()
            await stream.aclose()
            return first

        started = time.monotonic()
        self.assertEqual(asyncio.run(run()).event, "snapshot")
        deadline = time.monotonic() + 2
        while any(t.name == "jobs-api-events" for t in threading.enumerate()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertFalse([t for t in threading.enumerate() if t.name == "jobs-api-events"], "the reader thread still runs")
        self.assertLess(time.monotonic() - started, 3)


if __name__ == "__main__":
    unittest.main()
