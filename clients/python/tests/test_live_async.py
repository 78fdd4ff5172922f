"""AsyncJobsApi against a live Jobs API (settings as in test_live.py)."""

import asyncio
import unittest
from datetime import datetime
from typing import List

from jobs_api import AsyncJobsApi, BackupResult, JobCancelledError, JobEvent, JobFailedError, NotFoundError, WaitTimeout

from support import cancel_at_the_end, env, start_long_job


class AsyncLiveTest(unittest.IsolatedAsyncioTestCase):
    async def asyncSetUp(self) -> None:
        env("JOBS_API_URL")
        self.api = AsyncJobsApi()
        self.scan_server = env("JOBS_TEST_SCAN")
        self.fail_server = env("JOBS_TEST_FAIL")
        self.slow_server = env("JOBS_TEST_SLOW")
        self.long_server = env("JOBS_TEST_LONG")
        self.backup_server = env("JOBS_TEST_BACKUP")

    async def test_watch_and_wait_on_the_same_job_at_once(self) -> None:
        submitted = await self.api.submit("update:server", {"serverId": self.slow_server}, attempts=1)

        async def watch() -> List[JobEvent]:
            return [event async for event in self.api.watch(submitted.job_id)]

        events, done = await asyncio.gather(watch(), self.api.wait(submitted.job_id, timeout=60))
        self.assertEqual(done.state, "completed")
        self.assertEqual((events[0].event, events[-1].event), ("snapshot", "completed"))
        self.assertIn("PROGRESS 75", [e.line for e in events])
        page = await self.api.job_logs(submitted.job_id)
        self.assertEqual(page.lines, [e.line for e in events if e.event == "log"])

    async def test_many_calls_at_once(self) -> None:
        submitted = await asyncio.gather(*(self.api.scan(self.scan_server, scan_type="quick") for _ in range(5)))
        jobs = await asyncio.gather(*(self.api.wait(s.job_id, timeout=60) for s in submitted))
        self.assertEqual({j.state for j in jobs}, {"completed"})
        listed = [j.id async for j in self.api.iter_jobs(type="scan:quick", page_size=3)]
        self.assertTrue({s.job_id for s in submitted} <= set(listed))

    async def test_failures_timeouts_and_errors(self) -> None:
        failing = await self.api.update(self.fail_server, attempts=1)
        with self.assertRaises(JobFailedError) as caught:
            await self.api.wait(failing.job_id, timeout=60)
        self.assertIn("exited with code", caught.exception.reason)
        long_job = await asyncio.get_running_loop().run_in_executor(None, start_long_job, self, self.api.sync, self.long_server)
        with self.assertRaises(WaitTimeout):
            await self.api.wait(long_job, timeout=0.2)
        with self.assertRaises(asyncio.TimeoutError):
            await asyncio.wait_for(self.api.wait(long_job), 0.3)
        self.assertIn((await self.api.cancel_job(long_job)).outcome, ("cancelled", "cancelling"))
        with self.assertRaises(JobCancelledError) as cancelled:
            await self.api.wait(long_job, timeout=60)
        self.assertEqual((cancelled.exception.reason, cancelled.exception.job.state), ("cancelled", "cancelled"))
        with self.assertRaises(NotFoundError):
            await self.api.get_job("scan_doesnotexistdoesnotexis")

    async def test_a_job_cancelled_while_it_runs_ends_the_watch_and_the_wait(self) -> None:
        long_job = await asyncio.get_running_loop().run_in_executor(None, start_long_job, self, self.api.sync, self.long_server)

        async def watch() -> List[JobEvent]:
            return [event async for event in self.api.watch(long_job)]

        async def wait() -> BaseException:
            try:
                await self.api.wait(long_job, timeout=60)
            except BaseException as err:
                return err
            raise AssertionError("the wait answered a completed job")

        async def cancel() -> None:
            await asyncio.sleep(1)
            self.assertIn((await self.api.cancel_job(long_job)).outcome, ("cancelled", "cancelling"))

        events, ended, _ = await asyncio.gather(watch(), wait(), cancel())
        self.assertEqual((events[0].event, events[-1].event), ("snapshot", "cancelled"))
        self.assertIsInstance(ended, JobCancelledError)

    async def test_explain_and_the_list_filters(self) -> None:
        delayed = await self.api.submit("scan:quick", {"serverId": self.scan_server}, delay_ms=600000, timeout_sec=60)
        cancel_at_the_end(self, self.api.sync, delayed.job_id)
        explained = await self.api.explain_job(delayed.job_id)
        self.assertEqual((explained.state, explained.held), ("delayed", True))
        self.assertIn("DELAYED", [r.code for r in explained.reasons])
        created = datetime.fromisoformat((await self.api.get_job(delayed.job_id)).created_at.replace("Z", "+00:00"))
        listed = [j.id async for j in self.api.iter_jobs(server_id=self.scan_server, created_after=created, page_size=5)]
        self.assertIn(delayed.job_id, listed)
        self.assertNotIn(delayed.job_id, [j.id for j in (await self.api.list_jobs(server_id=self.scan_server, created_before=created)).jobs])
        self.assertEqual((await self.api.list_jobs(server_id=self.fail_server, created_after=created)).jobs, [])

    async def test_servers_and_backups(self) -> None:
        ids = [s.id async for s in self.api.iter_servers(page_size=2)]
        self.assertIn(self.backup_server, ids)
        self.assertEqual(ids, sorted(set(ids)))
        first = await self.api.list_servers(limit=2)
        self.assertEqual([s.id for s in first.servers], ids[:2])
        self.assertIsNotNone(first.next_cursor)
        started = await self.api.backup(self.backup_server)
        done = await self.api.wait(started.job_id, timeout=60)
        assert isinstance(done.result, BackupResult)
        self.assertEqual(done.result.backup_id, started.backup_id)
        self.assertIn(started.backup_id, [b.backup_id for b in await self.api.list_backups(self.backup_server)])


if __name__ == "__main__":
    unittest.main()
