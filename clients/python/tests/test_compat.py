"""jobs_api_client, the earlier one-file client's names over the package, against a live Jobs API."""

import os
import subprocess
import sys
import unittest

import jobs_api
from jobs_api_client import ApiError, Client, JobFailedError, WaitTimeout

from support import env, start_long_job


class CompatTest(unittest.TestCase):
    client: Client
    scan_server: str
    fail_server: str
    long_server: str

    @classmethod
    def setUpClass(cls) -> None:
        env("JOBS_API_URL")
        cls.client = Client()
        cls.scan_server = env("JOBS_TEST_SCAN")
        cls.fail_server = env("JOBS_TEST_FAIL")
        cls.long_server = env("JOBS_TEST_LONG")

    def test_answers_dicts_as_before(self) -> None:
        job = self.client.scan(self.scan_server, scan_type="quick")
        self.assertIn("scanId", job)
        seen = []
        done = self.client.wait_for_completion(job["jobId"], timeout=60, on_progress=lambda progress, j: seen.append((progress, j["id"])))
        self.assertEqual((done["state"], done["result"]["scanType"]), ("completed", "quick"))
        self.assertEqual(seen[-1], (100, job["jobId"]))
        self.assertEqual(self.client.get(job["jobId"])["id"], job["jobId"])
        events = list(self.client.events(job["jobId"]))
        self.assertEqual((events[0]["event"], events[-1]["event"]), ("snapshot", "completed"))
        self.assertIn(job["jobId"], [j["id"] for j in self.client.list(type="scan:quick", page_size=5)])
        submitted = self.client.submit("scan:quick", {"serverId": self.scan_server}, priority=2)
        self.assertEqual(submitted["queue"], "scan")
        with self.assertRaises(TypeError):
            self.client.submit("scan:quick", {"serverId": self.scan_server}, colour="blue")

    def test_errors_as_before(self) -> None:
        failing = self.client.update(self.fail_server, attempts=1)
        with self.assertRaises(JobFailedError) as caught:
            self.client.wait_for_completion(failing["jobId"], timeout=60)
        self.assertEqual(caught.exception.job["state"], "failed")
        self.assertIn("exited with code", caught.exception.reason)
        self.assertEqual(self.client.logs(failing["jobId"])["jobId"], failing["jobId"])
        self.assertTrue(self.client.remove(failing["jobId"])["removed"])
        long_job = start_long_job(self, self.client.api, self.long_server)
        with self.assertRaises(WaitTimeout) as timed_out:
            self.client.wait_for_completion(long_job, timeout=0.2)
        self.assertEqual(timed_out.exception.job["state"], "active")
        self.assertIn(self.client.cancel(long_job)["outcome"], ("cancelled", "cancelling"))
        with self.assertRaises(ApiError) as missing:
            self.client.get("scan_doesnotexistdoesnotexis")
        self.assertEqual((missing.exception.status, missing.exception.code), (404, "JOB_NOT_FOUND"))
        self.assertIs(ApiError, jobs_api.ApiError)

    def test_the_module_runs_the_jobsapi_command(self) -> None:
        home = os.path.dirname(os.path.abspath(jobs_api.__file__))
        environ = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(home), os.environ.get("PYTHONPATH", "")]))
        result = subprocess.run([sys.executable, "-m", "jobs_api_client", "get", "scan_doesnotexistdoesnotexis"], capture_output=True, text=True, env=environ, timeout=60)
        self.assertEqual(result.returncode, 6, result.stderr)


if __name__ == "__main__":
    unittest.main()
