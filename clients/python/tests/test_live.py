"""JobsApi against a live Jobs API: every route (the project's test suite starts one and runs these).

Needs JOBS_API_URL, JOBS_API_TOKEN (jobs:read jobs:write, in the tenant of the servers below),
JOBS_TEST_ADMIN_TOKEN (admin, same tenant), and servers: JOBS_TEST_SCAN (a scan that completes),
JOBS_TEST_FAIL (an update that fails), JOBS_TEST_SLOW (an update that runs a few seconds, printing
PROGRESS lines), JOBS_TEST_LONG (an update that runs until cancelled), JOBS_TEST_BACKUP (a server with
backup paths).
"""

import threading
import time
import unittest
import uuid
from datetime import datetime, timedelta
from typing import Any, Dict, List

from jobs_api import (
    BackupResult,
    JobCancelledError,
    JobFailedError,
    JobRemovedError,
    JobsApi,
    JobSpec,
    NotFoundError,
    RefusedError,
    RestoreResult,
    ScanResult,
    UnauthorizedError,
    UpdateResult,
    WaitTimeout,
)

from support import cancel_at_the_end, env, start_long_job


class LiveTest(unittest.TestCase):
    api: JobsApi
    admin: JobsApi
    scan_server: str
    fail_server: str
    slow_server: str
    long_server: str
    backup_server: str

    @classmethod
    def setUpClass(cls) -> None:
        env("JOBS_API_URL")
        env("JOBS_API_TOKEN")
        cls.api = JobsApi()
        cls.admin = JobsApi(token=env("JOBS_TEST_ADMIN_TOKEN"))
        cls.scan_server = env("JOBS_TEST_SCAN")
        cls.fail_server = env("JOBS_TEST_FAIL")
        cls.slow_server = env("JOBS_TEST_SLOW")
        cls.long_server = env("JOBS_TEST_LONG")
        cls.backup_server = env("JOBS_TEST_BACKUP")


class JobsTest(LiveTest):
    def test_submit_and_wait_reports_progress(self) -> None:
        submitted = self.api.submit("update:server", {"serverId": self.slow_server}, attempts=1, priority=1)
        self.assertEqual((submitted.queue, submitted.type), ("update", "update:server"))
        seen: List[float] = []
        done = self.api.wait(submitted.job_id, timeout=60, on_progress=lambda job: seen.append(job.progress))
        self.assertEqual((done.state, done.progress, done.max_attempts), ("completed", 100, 1))
        self.assertGreaterEqual(len(seen), 2)
        self.assertEqual(seen, sorted(seen))
        assert isinstance(done.result, UpdateResult)
        self.assertEqual(done.result.exit_code, 0)
        self.assertIn("PROGRESS 100", done.result.output_tail)

    def test_a_failed_job_raises_with_its_reason_and_can_be_retried_and_removed(self) -> None:
        started = self.api.update(self.fail_server, attempts=1)
        with self.assertRaises(JobFailedError) as caught:
            self.api.wait(started.job_id, timeout=60)
        self.assertIn("exited with code", caught.exception.reason)
        self.assertEqual(caught.exception.job.state, "failed")
        self.assertIn(self.api.retry_job(started.job_id).state, ("waiting", "active", "failed"))
        with self.assertRaises(JobFailedError):
            self.api.wait(started.job_id, timeout=60)
        removed = self.api.remove_job(started.job_id)
        self.assertEqual((removed.job_id, removed.removed), (started.job_id, True))
        with self.assertRaises(NotFoundError):
            self.api.get_job(started.job_id)

    def test_wait_timeout_then_cancel(self) -> None:
        job_id = start_long_job(self, self.api, self.long_server)
        with self.assertRaises(WaitTimeout) as caught:
            self.api.wait(job_id, timeout=0.3)
        self.assertEqual(caught.exception.job.state, "active")
        outcome = self.api.cancel_job(job_id)
        self.assertIn(outcome.outcome, ("cancelled", "cancelling"))
        with self.assertRaises(JobFailedError) as failed:
            self.api.wait(job_id, timeout=30)
        self.assertIsInstance(failed.exception, JobCancelledError)
        self.assertEqual((failed.exception.reason, failed.exception.job.state), ("cancelled", "cancelled"))
        self.assertEqual(self.api.get_job(job_id).state, "cancelled")
        with self.assertRaises(RefusedError) as finished:
            self.api.cancel_job(job_id)
        self.assertEqual((finished.exception.status, finished.exception.code), (409, "JOB_FINISHED"))

    def test_waiting_on_a_job_cancelled_while_it_runs_raises_job_cancelled_error(self) -> None:
        job_id = start_long_job(self, self.api, self.long_server)
        threading.Timer(0.5, lambda: self.api.cancel_job(job_id)).start()
        with self.assertRaises(JobCancelledError) as caught:
            self.api.wait(job_id, timeout=60, on_progress=lambda job: None)
        self.assertEqual((caught.exception.job_id, caught.exception.reason, caught.exception.job.state), (job_id, "cancelled", "cancelled"))
        self.assertIn(job_id, [j.id for j in self.api.iter_jobs(queue="update", state="cancelled")])
        self.assertNotIn(job_id, [j.id for j in self.api.iter_jobs(queue="update", state="failed")])

    def test_watching_a_job_cancelled_while_it_runs_ends_with_cancelled(self) -> None:
        job_id = start_long_job(self, self.api, self.long_server)
        events = []
        for event in self.api.watch(job_id):
            events.append(event)
            if event.event == "snapshot" and len(events) == 1:
                self.assertIn(self.api.cancel_job(job_id).outcome, ("cancelled", "cancelling"))
        self.assertEqual((events[0].event, events[-1].event), ("snapshot", "cancelled"))
        assert events[-1].id is not None
        self.assertTrue(events[-1].id.endswith("-end"))
        last = events[-1].job
        assert last is not None
        self.assertEqual((last.state, last.failed_reason), ("cancelled", "cancelled"))

    def test_explain_a_delayed_job_and_a_running_one(self) -> None:
        delayed = self.api.submit("scan:quick", {"serverId": self.scan_server}, delay_ms=600000)
        cancel_at_the_end(self, self.api, delayed.job_id)
        explained = self.api.explain_job(delayed.job_id)
        self.assertEqual((explained.job_id, explained.queue, explained.state, explained.held), (delayed.job_id, "scan", "delayed", True))
        self.assertTrue(explained.summary)
        reason = [r for r in explained.reasons if r.code == "DELAYED"][0]
        self.assertTrue(reason.message)
        assert reason.until is not None
        due = datetime.fromisoformat(reason.until.replace("Z", "+00:00"))
        created = datetime.fromisoformat(self.api.get_job(delayed.job_id).created_at.replace("Z", "+00:00"))
        self.assertAlmostEqual((due - created).total_seconds(), 600, delta=5)
        running = start_long_job(self, self.api, self.long_server)
        explained = self.api.explain_job(running)
        self.assertEqual((explained.state, explained.held, explained.reasons), ("active", False, []))
        self.assertTrue(explained.summary)
        with self.assertRaises(NotFoundError):
            self.api.explain_job("scan_doesnotexistdoesnotexis")

    def test_list_by_server_and_creation_time(self) -> None:
        first = self.api.submit("scan:quick", {"serverId": self.scan_server})
        on_backup = self.api.backup(self.backup_server, compression=False)
        second = self.api.submit("scan:quick", {"serverId": self.scan_server})
        for job_id in (first.job_id, on_backup.job_id, second.job_id):
            self.api.wait(job_id, timeout=60)
        on_scan = list(self.api.iter_jobs(server_id=self.scan_server, page_size=2))
        self.assertEqual({j.data["serverId"] for j in on_scan}, {self.scan_server})
        self.assertTrue({first.job_id, second.job_id} <= {j.id for j in on_scan})
        self.assertIn(on_backup.job_id, [j.id for j in self.api.list_jobs(server_id=self.backup_server, limit=100).jobs])
        self.assertEqual(self.api.list_jobs(server_id="no-such-server").jobs, [])
        # The window: createdAfter inclusive, createdBefore exclusive; aware datetimes or ISO 8601 text.
        at = datetime.fromisoformat(self.api.get_job(first.job_id).created_at.replace("Z", "+00:00"))
        since = [j.id for j in self.api.iter_jobs(server_id=self.scan_server, created_after=at)]
        self.assertIn(first.job_id, since)
        self.assertIn(second.job_id, since)
        before = [j.id for j in self.api.iter_jobs(created_before=self.api.get_job(first.job_id).created_at)]
        self.assertNotIn(first.job_id, before)
        self.assertNotIn(second.job_id, before)
        window = self.api.list_jobs(created_after=at, created_before=at + timedelta(milliseconds=1), limit=100).jobs
        self.assertIn(first.job_id, [j.id for j in window])
        self.assertNotIn(on_backup.job_id, [j.id for j in self.api.list_jobs(server_id=self.scan_server, created_after=at, limit=100).jobs])
        for job in self.api.iter_jobs(created_after=at):
            self.assertGreaterEqual(datetime.fromisoformat(job.created_at.replace("Z", "+00:00")), at)
        with self.assertRaisesRegex(ValueError, "timezone-aware"):
            self.api.list_jobs(created_after=datetime.now())
        with self.assertRaises(RefusedError) as refused:
            self.api.list_jobs(created_after=at, created_before=at)
        self.assertEqual(refused.exception.status, 400)

    def test_a_job_s_own_timeout_and_backoff(self) -> None:
        started = self.api.update(self.long_server, attempts=1, timeout_sec=1)
        with self.assertRaises(JobFailedError) as caught:
            self.api.wait(started.job_id, timeout=60)
        self.assertNotIsInstance(caught.exception, JobCancelledError)
        self.assertEqual(caught.exception.job.state, "failed")
        self.assertRegex(caught.exception.reason, r"timed out after 1 ?s")
        submitted = self.api.submit("update:server", {"serverId": self.fail_server}, attempts=2, backoff_ms=100, backoff_max_ms=200, timeout_sec=30)
        with self.assertRaises(JobFailedError) as failed:
            self.api.wait(submitted.job_id, timeout=60)
        self.assertEqual(failed.exception.job.attempts, 2)
        with self.assertRaises(RefusedError) as refused:
            self.api.submit("scan:quick", {"serverId": self.scan_server}, backoff_ms=1000, backoff_max_ms=500)
        self.assertEqual(refused.exception.status, 400)
        with self.assertRaises(RefusedError):
            self.api.submit("scan:quick", {"serverId": self.scan_server}, timeout_sec=0)
        with self.assertRaises(RefusedError):
            self.api.submit_bulk([JobSpec("scan:quick", {"serverId": self.scan_server}, timeout_sec=86401)])
        ok = self.api.submit_bulk([JobSpec("scan:quick", {"serverId": self.scan_server}, 2, None, 1, timeout_sec=60, backoff_ms=100)])
        self.assertEqual(self.api.wait(ok.jobs[0].job_id, timeout=60).max_attempts, 1)

    def test_delayed_jobs_promoted_or_removed_while_waited_for(self) -> None:
        delayed = self.api.submit("scan:quick", {"serverId": self.scan_server}, delay_ms=60000)
        self.assertEqual(self.api.get_job(delayed.job_id).state, "delayed")
        self.assertIn(self.api.promote_job(delayed.job_id).state, ("waiting", "active", "completed"))
        self.assertEqual(self.api.wait(delayed.job_id, timeout=30).state, "completed")
        gone = self.api.submit("scan:quick", {"serverId": self.scan_server}, delay_ms=60000)
        threading.Timer(0.5, lambda: self.api.cancel_job(gone.job_id)).start()
        with self.assertRaises(JobRemovedError):
            self.api.wait(gone.job_id, timeout=30, on_progress=lambda job: None)

    def test_errors_carry_status_code_message_and_request_id(self) -> None:
        with self.assertRaises(NotFoundError) as caught:
            self.api.get_job("scan_doesnotexistdoesnotexis")
        err = caught.exception
        self.assertEqual((err.status, err.code), (404, "JOB_NOT_FOUND"))
        self.assertTrue(err.request_id)
        with self.assertRaises(RefusedError) as refused:
            self.api.submit("scan:quick", {"serverId": "no-such-server"})
        self.assertEqual((refused.exception.status, refused.exception.code), (400, "UNKNOWN_SERVER"))
        with self.assertRaises(UnauthorizedError) as unauthorized:
            JobsApi(token="not-a-token").list_jobs()
        self.assertEqual(unauthorized.exception.status, 401)
        with self.assertRaises(UnauthorizedError) as forbidden:
            self.api.pause_queue("scan")
        self.assertEqual((forbidden.exception.status, forbidden.exception.code), (403, "FORBIDDEN"))

    def test_list_pages_and_iterates_over_the_cursors(self) -> None:
        ids = [self.api.submit("scan:quick", {"serverId": self.scan_server}).job_id for _ in range(3)]
        page = self.api.list_jobs(type="scan:quick", limit=1)
        self.assertEqual(len(page.jobs), 1)
        self.assertIsNotNone(page.next_cursor)
        listed = [j.id for j in self.api.iter_jobs(type="scan:quick", page_size=2)]
        for job_id in ids:
            self.assertIn(job_id, listed)
        self.assertEqual(len(listed), len(set(listed)))
        for job_id in ids:
            self.api.wait(job_id, timeout=30)
        self.assertFalse([j for j in self.api.iter_jobs(queue="scan", state="failed") if j.id in ids])
        stats = self.admin.job_stats()
        self.assertGreaterEqual(stats.scan.completed, 3)
        self.assertEqual(stats.total.total, stats.backup.total + stats.scan.total + stats.update.total)

    def test_logs_and_events_with_resume(self) -> None:
        submitted = self.api.submit("update:server", {"serverId": self.slow_server}, attempts=1)
        events = list(self.api.watch(submitted.job_id))
        self.assertEqual(events[0].event, "snapshot")
        self.assertEqual(events[-1].event, "completed")
        assert events[-1].id is not None
        self.assertTrue(events[-1].id.endswith("-end"))
        last = events[-1].job
        assert last is not None
        self.assertEqual(last.state, "completed")
        self.assertIn(100.0, [e.progress for e in events if e.event == "progress"] + [last.progress])
        lines = [e.line for e in events if e.event == "log"]
        self.assertIn("PROGRESS 50", lines)
        page = self.api.job_logs(submitted.job_id, start=0, limit=2)
        self.assertEqual((page.lines, page.next_start, page.count), (lines[:2], 2, len(lines)))
        # Reconnecting from an event id: only what came after it; from the last one's: nothing (a 204).
        again = list(self.api.watch(submitted.job_id, last_event_id="2"))
        self.assertEqual(again[0].event, "snapshot")
        self.assertEqual([e.line for e in again if e.event == "log"], lines[2:])
        self.assertEqual(list(self.api.watch(submitted.job_id, last_event_id=events[-1].id)), [])

    def test_a_stream_ticket_for_a_browser(self) -> None:
        submitted = self.api.submit("scan:quick", {"serverId": self.scan_server})
        ticket = self.api.stream_ticket(submitted.job_id)
        self.assertTrue(ticket.ticket)
        self.assertTrue(ticket.url.startswith("/api/jobs/{}/events?ticket=".format(submitted.job_id)), ticket.url)
        self.assertTrue(ticket.expires_at)

    def test_watching_a_failing_job_ends_with_failed(self) -> None:
        started = self.api.update(self.fail_server, attempts=1)
        events = list(self.api.watch(started.job_id))
        self.assertEqual(events[-1].event, "failed")
        failed = events[-1].job
        assert failed is not None
        self.assertIn("exited with code", failed.failed_reason or "")

    def test_idempotency_key_and_bulk(self) -> None:
        key = "py-test-" + uuid.uuid4().hex
        a = self.api.submit("scan:quick", {"serverId": self.scan_server}, idempotency_key=key)
        b = self.api.submit("scan:quick", {"serverId": self.scan_server}, idempotency_key=key)
        self.assertEqual(a.job_id, b.job_id)
        bulk = self.api.submit_bulk([JobSpec("scan:quick", {"serverId": self.scan_server}), {"type": "scan:full", "data": {"serverId": self.scan_server}}])
        self.assertEqual((bulk.count, [j.type for j in bulk.jobs]), (2, ["scan:quick", "scan:full"]))
        with self.assertRaises(RefusedError) as caught:
            self.api.submit_bulk([JobSpec("scan:quick", {"serverId": self.scan_server}), {"type": "scan:quick", "data": {}}])
        self.assertEqual(caught.exception.code, "BULK_INVALID")
        self.assertEqual([d.index for d in caught.exception.details], [1])


class ServersTest(LiveTest):
    def test_servers(self) -> None:
        # Every page, by id, each server once (pages of 2: several of them).
        ids = [s.id for s in self.api.iter_servers(page_size=2)]
        self.assertEqual(ids, sorted(set(ids)))
        self.assertTrue({self.scan_server, self.fail_server, self.slow_server, self.backup_server} <= set(ids))
        first = self.api.list_servers(limit=2)
        self.assertEqual([s.id for s in first.servers], ids[:2])
        assert first.next_cursor is not None
        self.assertEqual([s.id for s in self.api.list_servers(limit=2, cursor=first.next_cursor).servers], ids[2:4])
        whole = self.api.list_servers(limit=1000)
        self.assertEqual(([s.id for s in whole.servers], whole.next_cursor), (ids, None))
        with self.assertRaises(RefusedError) as refused:
            self.api.list_servers(cursor="not a cursor")
        self.assertEqual((refused.exception.status, refused.exception.code), (400, "INVALID_CURSOR"))
        server = self.api.get_server(self.backup_server)
        self.assertEqual(server.kinds, ["backup"])
        assert server.backup is not None
        self.assertEqual(len(server.backup.paths), 1)
        self.assertIsNone(server.update)
        with self.assertRaises(NotFoundError):
            self.api.get_server("no-such-server")

    def test_backup_list_restore_and_remove_the_restore(self) -> None:
        started = self.api.backup(self.backup_server, compression=False)
        self.assertEqual(started.status, "pending")
        done = self.api.wait(started.job_id, timeout=60)
        assert isinstance(done.result, BackupResult)
        self.assertEqual((done.result.backup_id, done.result.compressed, done.result.files), (started.backup_id, False, 1))
        backups = self.api.list_backups(self.backup_server)
        self.assertEqual(backups[0].backup_id, started.backup_id)
        self.assertEqual(backups[0].sha256, done.result.sha256)
        restoring = self.api.restore(self.backup_server, started.backup_id)
        restored = self.api.wait(restoring.job_id, timeout=60)
        assert isinstance(restored.result, RestoreResult)
        self.assertEqual((restored.result.restore_id, restored.result.files), (restoring.restore_id, 1))
        restores = self.api.list_restores(self.backup_server)
        self.assertIn(restoring.restore_id, [r.restore_id for r in restores])
        removed = self.api.remove_restore(self.backup_server, restoring.restore_id)
        self.assertEqual((removed.restore_id, removed.removed), (restoring.restore_id, True))
        self.assertNotIn(restoring.restore_id, [r.restore_id for r in self.api.list_restores(self.backup_server)])
        with self.assertRaises(NotFoundError):
            self.api.remove_restore(self.backup_server, restoring.restore_id)

    def test_scan_and_its_record(self) -> None:
        started = self.api.scan(self.scan_server, scan_type="quick")
        done = self.api.wait(started.job_id, timeout=60)
        assert isinstance(done.result, ScanResult)
        self.assertEqual((done.result.scan_id, done.result.scan_type, done.result.reachable), (started.scan_id, "quick", False))
        self.assertEqual([p.port for p in done.result.closed], [1])
        records = self.api.list_scans(self.scan_server, limit=5)
        record = [r for r in records if r.scan_id == started.scan_id][0]
        self.assertEqual((record.status, record.job_id, record.scan_type), ("completed", started.job_id, "quick"))


class AdminTest(LiveTest):
    def test_queues(self) -> None:
        self.assertEqual(sorted(q.queue for q in self.admin.list_queues()), ["backup", "scan", "update"])
        self.assertTrue(self.admin.pause_queue("scan").paused)
        try:
            self.assertTrue(self.admin.get_queue("scan").paused)
        finally:
            self.assertFalse(self.admin.resume_queue("scan").paused)
        self.assertEqual(self.admin.stuck_jobs("update", older_than_ms=3600000).jobs, [])
        self.assertEqual(self.admin.unstick_queue("update", older_than_ms=3600000).moved, 0)
        self.assertEqual(self.admin.remove_stuck("update", older_than_ms=3600000).removed, 0)
        retried = self.admin.retry_failed("update", error_contains="no such error at all", dry_run=True)
        self.assertEqual((retried.dry_run, retried.matched), (True, 0))
        self.assertEqual(self.admin.clean_queue("backup", "failed", older_than_ms=3600000, limit=10).removed, 0)
        delayed = self.api.submit("scan:quick", {"serverId": self.scan_server}, delay_ms=600000)
        drained = self.admin.drain_queue("scan", delayed=True)
        self.assertGreaterEqual(drained.removed.delayed, 1)
        with self.assertRaises(NotFoundError):
            self.api.get_job(delayed.job_id)

    def test_throughput_slow_jobs_and_concurrency(self) -> None:
        done = self.api.submit("scan:quick", {"serverId": self.scan_server})
        self.api.wait(done.job_id, timeout=60)
        # The worker processes add what finished to the minute's bucket every second.
        deadline = time.monotonic() + 10
        throughput = self.admin.queue_throughput("scan", window_min=5)
        while throughput.total.completed < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
            throughput = self.admin.queue_throughput("scan", window_min=5)
        self.assertEqual((throughput.queue, throughput.window_min, len(throughput.buckets)), ("scan", 5, 5))
        self.assertGreaterEqual(throughput.total.completed, 1)
        self.assertEqual(throughput.from_, throughput.buckets[0].minute)
        slow = self.admin.slow_jobs("scan", limit=3)
        self.assertEqual(slow.queue, "scan")
        self.assertGreaterEqual(slow.scanned, 1)
        self.assertTrue(1 <= len(slow.jobs) <= 3)
        durations = [j.duration_ms for j in slow.jobs]
        self.assertEqual(durations, sorted(durations, reverse=True))

        before = self.admin.get_concurrency("scan")
        self.assertEqual((before.queue, before.override, before.concurrency), ("scan", None, before.configured))
        self.addCleanup(self.admin.reset_concurrency, "scan")
        scaled = self.admin.scale_queue("scan", before.configured + 1)
        self.assertEqual((scaled.override, scaled.concurrency), (before.configured + 1, before.configured + 1))
        self.assertEqual(self.admin.get_concurrency("scan").override, before.configured + 1)
        reset = self.admin.reset_concurrency("scan")
        self.assertEqual((reset.override, reset.concurrency), (None, before.configured))

    def test_throttle_a_tenant(self) -> None:
        self.addCleanup(self.admin.reset_throttle, "py")
        throttled = self.admin.throttle_tenant("py", 1000, per_ms=60000, ttl_seconds=60, queue="scan")
        self.assertEqual(throttled.tenant, "py")
        assert throttled.throttle is not None
        self.assertEqual((throttled.throttle.max, throttled.throttle.per_ms, throttled.throttle.queues), (1000, 60000, ["scan"]))
        self.assertTrue(throttled.throttle.expires_at)
        limit = self.admin.get_tenant_limit("py")
        assert limit.throttle is not None
        self.assertEqual(limit.throttle.max, 1000)
        self.assertIsNone(self.admin.reset_throttle("py").throttle)
        self.assertIsNone(self.admin.get_tenant_limit("py").throttle)

    def test_dead_letters(self) -> None:
        started = self.api.update(self.fail_server, attempts=1)
        with self.assertRaises(JobFailedError):
            self.api.wait(started.job_id, timeout=60)
        letters = self.api.list_dead_letters(queue="update", error_contains="exited with code", limit=100)
        letter = [j for j in letters.jobs if j.id == started.job_id][0]
        self.assertIsNone(letter.replayed_as)
        self.assertTrue(letter.error_type)
        self.assertIn(started.job_id, [j.id for j in self.api.iter_dead_letters(queue="update", page_size=2)])
        summary = self.api.dead_letter_errors(queue="update")
        self.assertIn(letter.error_type, [g.error_type for g in summary.groups])
        of_type = self.api.list_dead_letters(error_type=letter.error_type, limit=100).jobs
        self.assertIn(started.job_id, [j.id for j in of_type])
        self.assertEqual({j.error_type for j in of_type}, {letter.error_type})
        self.assertIn(started.job_id, [j.id for j in self.api.iter_dead_letters(error_type=letter.error_type, page_size=2)])
        replayed = self.api.replay_dead_letters(ids=[started.job_id])
        self.assertEqual((replayed.count, replayed.replayed[0].from_), (1, started.job_id))
        with self.assertRaises(JobFailedError):
            self.api.wait(replayed.replayed[0].to, timeout=60)
        self.assertEqual(self.api.remove_dead_letter(started.job_id).job_id, started.job_id)
        with self.assertRaises(ValueError):
            self.api.replay_dead_letters(ids=["x"], queue="update")

    def test_schedules(self) -> None:
        schedule = self.api.set_schedule("py-nightly", "scan:quick", {"serverId": self.scan_server}, "0 2 * * *", tz="Europe/Paris", priority=4)
        self.assertEqual((schedule.id, schedule.queue, schedule.tz, schedule.options.priority), ("py-nightly", "scan", "Europe/Paris", 4))
        self.assertTrue(schedule.next)
        self.assertIn("py-nightly", [s.id for s in self.api.list_schedules()])
        self.assertEqual(self.api.get_schedule("py-nightly").cron, "0 2 * * *")
        self.assertTrue(self.api.remove_schedule("py-nightly").removed)
        with self.assertRaises(NotFoundError):
            self.api.get_schedule("py-nightly")

    def test_metrics_health_workers_and_tenants(self) -> None:
        self.assertEqual(self.api.health().status, "ok")
        self.assertEqual(self.api.ready().status, "ready")
        metrics = self.admin.queue_metrics()
        self.assertIn(metrics.health.status, ("healthy", "degraded", "unhealthy"))
        system = self.admin.system_metrics()
        self.assertTrue(system.version)
        self.assertTrue(system.redis.status)
        self.assertIn("queue_waiting_jobs", self.admin.prometheus_metrics())
        self.assertGreaterEqual(self.admin.worker_status().queues.scan.concurrency, 1)
        self.assertEqual(self.admin.get_tenant_limit("py").tenant, "py")
        self.assertEqual(self.admin.set_tenant_limit("py", 7, ttl_seconds=60).override, 7)
        self.assertIsNone(self.admin.reset_tenant_limit("py").override)
        self.assertEqual([s.tenant for s in self.admin.tenant_stats(tenant="py")], ["py"])


if __name__ == "__main__":
    unittest.main()


class WebhooksTest(LiveTest):
    def test_a_webhook_receives_a_completed_job_signed_with_its_secret(self) -> None:
        import json
        from http.server import BaseHTTPRequestHandler, HTTPServer

        from jobs_api.webhooks import WebhookVerificationError, verify

        received: List[Dict[str, Any]] = []
        arrived = threading.Event()

        class Receiver(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                received.append({"headers": dict(self.headers.items()), "body": body})
                self.send_response(204)
                self.end_headers()
                arrived.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        server = HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            hook = self.api.create_webhook("http://127.0.0.1:{}/jobs".format(server.server_address[1]), ["job.completed"])
            self.assertTrue(hook.secret.startswith("whsec_"))
            self.assertIn(hook.id, [h.id for h in self.api.list_webhooks()])
            self.assertEqual(self.api.get_webhook(hook.id).events, ["job.completed"])

            job = self.api.scan(self.scan_server, scan_type="quick")
            self.api.wait(job.job_id, timeout=60)
            # Deliveries of other tests' jobs may come first: wait for this job's, up to 20 s.
            ours: List[Dict[str, Any]] = []
            deadline = time.monotonic() + 20
            while not ours and time.monotonic() < deadline:
                arrived.wait(0.2)
                arrived.clear()
                ours = [r for r in received if json.loads(r["body"])["data"]["jobId"] == job.job_id]
            self.assertEqual(len(ours), 1, "received {}, delivery log {}".format([r["body"][:200] for r in received], self.api.webhook_deliveries(hook.id)))
            event = verify(hook.secret, ours[0]["headers"], ours[0]["body"])
            self.assertEqual((event["type"], event["data"]["state"]), ("job.completed", "completed"))
            with self.assertRaises(WebhookVerificationError):
                verify(hook.secret, ours[0]["headers"], ours[0]["body"].replace(b"completed", b"c0mpleted"))

            deliveries = self.api.webhook_deliveries(hook.id)
            self.assertIn((job.job_id, "delivered", 204), [(d.job_id, d.status, d.status_code) for d in deliveries])
            rotated = self.api.rotate_webhook_secret(hook.id)
            self.assertNotEqual(rotated.secret, hook.secret)
            self.assertTrue(self.api.remove_webhook(hook.id).removed)
            with self.assertRaises(NotFoundError):
                self.api.get_webhook(hook.id)
        finally:
            server.shutdown()
            server.server_close()
