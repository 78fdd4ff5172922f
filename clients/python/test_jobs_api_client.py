"""The client's tests, against a live Jobs API (the project's test suite starts one and runs these).

Needs JOBS_API_URL, JOBS_API_TOKEN (tenant with the servers below) and the ids of three servers:
JOBS_TEST_SCAN (a scan that completes), JOBS_TEST_FAIL (an update that fails), JOBS_TEST_SLOW (an
update that runs for a while, printing PROGRESS lines), JOBS_TEST_BACKUP (a server with backup paths).
"""

import http.server
import json
import os
import subprocess
import sys
import threading
import unittest

from jobs_api_client import ApiError, Client, JobFailedError, WaitTimeout

HERE = os.path.dirname(os.path.abspath(__file__))


def env(name):
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest("{} is not set: run these through the project's test suite".format(name))
    return value


class LiveApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        env("JOBS_API_URL")
        cls.client = Client()
        cls.scan_server = env("JOBS_TEST_SCAN")
        cls.fail_server = env("JOBS_TEST_FAIL")
        cls.slow_server = env("JOBS_TEST_SLOW")
        cls.backup_server = env("JOBS_TEST_BACKUP")

    def test_submit_and_wait_reports_progress(self):
        job = self.client.submit("update:server", {"serverId": self.slow_server}, attempts=1)
        self.assertEqual(job["queue"], "update")
        seen = []
        done = self.client.wait_for_completion(job["jobId"], timeout=60, on_progress=lambda p, j: seen.append(p))
        self.assertEqual(done["state"], "completed")
        self.assertEqual(done["progress"], 100)
        self.assertGreaterEqual(len(seen), 2)
        self.assertEqual(seen, sorted(seen))

    def test_server_helpers(self):
        backup = self.client.backup(self.backup_server, compression=False)
        self.assertIn("backupId", backup)
        done = self.client.wait_for_completion(backup["jobId"], timeout=60)
        self.assertEqual(done["result"]["backupId"], backup["backupId"])
        scan = self.client.scan(self.scan_server, scan_type="quick")
        self.assertEqual(self.client.wait_for_completion(scan["jobId"], timeout=60)["result"]["scanType"], "quick")

    def test_a_failed_job_raises_with_its_reason_and_can_be_retried_and_removed(self):
        job = self.client.update(self.fail_server, attempts=1)
        with self.assertRaises(JobFailedError) as caught:
            self.client.wait_for_completion(job["jobId"], timeout=60)
        self.assertIn("exited with code", caught.exception.reason)
        self.assertEqual(caught.exception.job["state"], "failed")
        self.assertIn(self.client.retry(job["jobId"])["state"], ("waiting", "active", "failed"))
        with self.assertRaises(JobFailedError):
            self.client.wait_for_completion(job["jobId"], timeout=60)
        self.assertTrue(self.client.remove(job["jobId"])["removed"])

    def test_wait_timeout_then_cancel(self):
        job = self.client.update(self.slow_server, attempts=1)
        with self.assertRaises(WaitTimeout) as caught:
            self.client.wait_for_completion(job["jobId"], timeout=0.3)
        self.assertIn(caught.exception.job["state"], ("waiting", "active", "delayed"))
        outcome = self.client.cancel(job["jobId"])
        self.assertIn(outcome["outcome"], ("removed", "cancelled", "cancelling"))

    def test_errors_carry_status_code_message_and_request_id(self):
        with self.assertRaises(ApiError) as caught:
            self.client.get("scan_doesnotexistdoesnotexis")
        err = caught.exception
        self.assertEqual((err.status, err.code), (404, "JOB_NOT_FOUND"))
        self.assertTrue(err.request_id)
        with self.assertRaises(ApiError) as caught:
            self.client.submit("scan:quick", {"serverId": "no-such-server"})
        self.assertEqual((caught.exception.status, caught.exception.code), (400, "UNKNOWN_SERVER"))

    def test_list_follows_cursors(self):
        ids = [self.client.submit("scan:quick", {"serverId": self.scan_server})["jobId"] for _ in range(3)]
        listed = [j["id"] for j in self.client.list(type="scan:quick", page_size=2)]
        for job_id in ids:
            self.assertIn(job_id, listed)
        self.assertEqual(len(listed), len(set(listed)))

    def test_logs_and_events(self):
        job = self.client.submit("update:server", {"serverId": self.slow_server}, attempts=1)
        events = list(self.client.events(job["jobId"]))
        self.assertEqual(events[0]["event"], "snapshot")
        self.assertEqual(events[-1]["event"], "completed")
        lines = [e["data"]["line"] for e in events if e["event"] == "log"]
        self.assertIn("PROGRESS 50", lines)
        page = self.client.logs(job["jobId"], start=0, limit=2)
        self.assertEqual(page["lines"], lines[:2])
        self.assertEqual(page["nextStart"], 2)
        # Reconnecting from an event id: only what came after it.
        again = list(self.client.events(job["jobId"], last_event_id="2"))
        self.assertEqual([e["data"]["line"] for e in again if e["event"] == "log"], lines[2:])

    def test_idempotency_key(self):
        a = self.client.submit("scan:quick", {"serverId": self.scan_server}, idempotency_key="py-test-key-1")
        b = self.client.submit("scan:quick", {"serverId": self.scan_server}, idempotency_key="py-test-key-1")
        self.assertEqual(a["jobId"], b["jobId"])

    def test_command_line_exit_codes(self):
        run = lambda *args: subprocess.run([sys.executable, "-m", "jobs_api_client"] + list(args), cwd=HERE, capture_output=True, text=True, timeout=120)
        submitted = run("submit", "scan:quick", "--data", json.dumps({"serverId": self.scan_server}))
        self.assertEqual(submitted.returncode, 0, submitted.stderr)
        job_id = submitted.stdout.strip()
        waited = run("wait", job_id, "--timeout", "60")
        self.assertEqual(waited.returncode, 0, waited.stderr)
        self.assertEqual(json.loads(waited.stdout)["state"], "completed")
        self.assertEqual(json.loads(run("get", job_id).stdout)["id"], job_id)
        failing = run("submit", "update:server", "--data", json.dumps({"serverId": self.fail_server}), "--attempts", "1").stdout.strip()
        self.assertEqual(run("wait", failing, "--timeout", "60").returncode, 1)
        self.assertEqual(run("submit", "scan:quick", "--data", "{nope").returncode, 2)
        self.assertEqual(run("get", "scan_doesnotexistdoesnotexis").returncode, 3)
        run("submit", "scan:quick", "--data", json.dumps({"serverId": self.scan_server}))
        listed = run("list", "--type", "scan:quick", "--limit", "2")
        self.assertEqual(len(listed.stdout.strip().splitlines()), 2)


class RetryTest(unittest.TestCase):
    """Retries happen on 429/502/503/504 (honouring Retry-After) and connection errors, never on other errors."""

    def serve(self, answers):
        calls = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self.do_GET()

            def do_GET(self):
                calls.append((self.path, self.headers.get("Idempotency-Key")))
                status, headers, body = answers[min(len(calls), len(answers)) - 1]
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, *args):
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.shutdown)
        return "http://127.0.0.1:{}".format(server.server_address[1]), calls

    def test_retries_a_503_and_a_429_after_retry_after(self):
        ok = {"success": True, "data": {"id": "scan_x", "state": "completed"}}
        busy = {"success": False, "error": {"code": "REDIS_UNAVAILABLE", "message": "later"}, "requestId": "r1"}
        url, calls = self.serve([(503, {"Retry-After": "0"}, busy), (429, {"Retry-After": "0"}, busy), (200, {}, ok)])
        self.assertEqual(Client(url, token="t").get("scan_x")["state"], "completed")
        self.assertEqual(len(calls), 3)

    def test_a_retried_enqueue_sends_the_same_idempotency_key(self):
        busy = {"success": False, "error": {"code": "REDIS_UNAVAILABLE", "message": "later"}, "requestId": "r3"}
        ok = {"success": True, "data": {"jobId": "scan_x", "queue": "scan", "type": "scan:quick", "state": "waiting"}}
        url, calls = self.serve([(503, {"Retry-After": "0"}, busy), (202, {}, ok)])
        self.assertEqual(Client(url, token="t").submit("scan:quick", {"serverId": "web"})["jobId"], "scan_x")
        self.assertEqual(len(calls), 2)
        self.assertTrue(calls[0][1])
        self.assertEqual(calls[0][1], calls[1][1])

    def test_does_not_retry_a_client_error(self):
        bad = {"success": False, "error": {"code": "VALIDATION_ERROR", "message": "no"}, "requestId": "r2"}
        url, calls = self.serve([(400, {}, bad)])
        with self.assertRaises(ApiError) as caught:
            Client(url, token="t").get("scan_x")
        self.assertEqual((caught.exception.status, caught.exception.code, caught.exception.request_id), (400, "VALIDATION_ERROR", "r2"))
        self.assertEqual(len(calls), 1)

    def test_gives_up_on_an_unreachable_api(self):
        with self.assertRaises(ApiError) as caught:
            Client("http://127.0.0.1:9", token="t", retries=1).get("scan_x")
        self.assertEqual(caught.exception.code, "UNREACHABLE")

    def test_defaults_come_from_the_environment(self):
        os.environ["JOBS_API_URL"], saved = "http://example.invalid:1234/", os.environ.get("JOBS_API_URL")
        try:
            self.assertEqual(Client(token="t").base_url, "http://example.invalid:1234")
        finally:
            if saved is None:
                del os.environ["JOBS_API_URL"]
            else:
                os.environ["JOBS_API_URL"] = saved


if __name__ == "__main__":
    unittest.main()
