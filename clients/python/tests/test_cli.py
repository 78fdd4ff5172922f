"""The `jobsapi` command against a live Jobs API: its output and its exit codes (jobsctl's).

0 ok · 1 unexpected · 2 usage · 3 found · 4 the job failed or was cancelled · 5 the wait timed out ·
6 refused (400/404/409/422/429) · 7 unauthorized (401/403) · 8 unavailable (unreachable, 5xx)
"""

import argparse
import json
import os
import subprocess
import sys
import time
import unittest
from datetime import datetime, timedelta, timezone
from typing import Dict, List, Optional

import jobs_api
from jobs_api import JobExplanation, JobsApi
from jobs_api.cli import _explanation_text, _time_arg

from support import ScriptedServer, cancel_at_the_end, env, error, start_long_job

HERE = os.path.dirname(os.path.abspath(__file__))
#: Where the jobs_api these tests import comes from (a checkout or a venv), for the commands they run.
PACKAGE_HOME = os.path.dirname(os.path.dirname(os.path.abspath(jobs_api.__file__)))


def command() -> List[str]:
    """The installed console script when this Python has one beside it (a venv), else `python -m jobs_api`."""
    script = os.path.join(os.path.dirname(sys.executable), "jobsapi")
    return [script] if os.path.isfile(script) else [sys.executable, "-m", "jobs_api"]


class CliTest(unittest.TestCase):
    api: JobsApi
    admin_token: str
    scan_server: str
    fail_server: str
    slow_server: str
    long_server: str
    backup_server: str

    @classmethod
    def setUpClass(cls) -> None:
        env("JOBS_API_URL")
        cls.api = JobsApi()
        cls.admin_token = env("JOBS_TEST_ADMIN_TOKEN")
        cls.scan_server = env("JOBS_TEST_SCAN")
        cls.fail_server = env("JOBS_TEST_FAIL")
        cls.slow_server = env("JOBS_TEST_SLOW")
        cls.long_server = env("JOBS_TEST_LONG")
        cls.backup_server = env("JOBS_TEST_BACKUP")

    @staticmethod
    def environ(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        environ = dict(os.environ, **(env or {}))
        environ["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_HOME, os.environ.get("PYTHONPATH")) if p)
        return {k: v for k, v in environ.items() if v != ""}

    def run_cli(self, *args: str, env: Optional[Dict[str, str]] = None) -> "subprocess.CompletedProcess[str]":
        return subprocess.run(command() + list(args), capture_output=True, text=True, timeout=120, env=self.environ(env), cwd=HERE)

    def assertExit(self, result: "subprocess.CompletedProcess[str]", code: int) -> None:
        self.assertEqual(result.returncode, code, "stdout: {}\nstderr: {}".format(result.stdout, result.stderr))

    def submit(self, job_type: str, server: str, *more: str) -> str:
        result = self.run_cli("submit", job_type, "--data", json.dumps({"serverId": server}), *more)
        self.assertExit(result, 0)
        return result.stdout.strip().splitlines()[0]

    def test_submit_get_and_wait(self) -> None:
        job_id = self.submit("scan:quick", self.scan_server)
        self.assertRegex(job_id, r"^scan_\S+$")
        waited = self.run_cli("wait", job_id, "--timeout", "60")
        self.assertExit(waited, 0)
        self.assertEqual(json.loads(waited.stdout)["state"], "completed")
        got = self.run_cli("get", job_id)
        self.assertExit(got, 0)
        self.assertEqual(json.loads(got.stdout)["id"], job_id)
        self.assertIn("maxAttempts", json.loads(got.stdout))  # the API's names, as jobsctl --json prints them
        self.assertExit(self.run_cli("get", job_id, "--wait"), 0)
        waited = self.run_cli("submit", "scan:quick", "--data", json.dumps({"serverId": self.scan_server}), "--wait", "--json")
        self.assertExit(waited, 0)
        self.assertEqual(json.loads(waited.stdout)["queue"], "scan")

    def test_a_failed_job_exits_4(self) -> None:
        self.assertExit(self.run_cli("submit", "update:server", "--data", json.dumps({"serverId": self.fail_server}), "--attempts", "1", "--wait"), 4)
        job_id = self.submit("update:server", self.fail_server, "--attempts", "1")
        waited = self.run_cli("wait", job_id)
        self.assertExit(waited, 4)
        self.assertEqual(json.loads(waited.stdout)["state"], "failed")
        self.assertIn("exited with code", waited.stderr)
        self.assertExit(self.run_cli("get", job_id, "--wait"), 4)
        self.assertExit(self.run_cli("watch", job_id), 4)
        retried = self.run_cli("retry", job_id)
        self.assertExit(retried, 0)
        self.assertEqual(json.loads(retried.stdout)["jobId"], job_id)
        self.assertExit(self.run_cli("wait", job_id), 4)
        self.assertExit(self.run_cli("remove", job_id), 0)
        self.assertExit(self.run_cli("get", job_id), 6)

    def test_a_wait_that_times_out_exits_5_and_a_cancelled_job_4(self) -> None:
        job_id = start_long_job(self, self.api, self.long_server)
        timed_out = self.run_cli("wait", job_id, "--timeout", "0.3")
        self.assertExit(timed_out, 5)
        self.assertEqual(json.loads(timed_out.stdout)["state"], "active")
        self.assertExit(self.run_cli("get", job_id, "--wait", "--timeout", "0.1"), 5)
        waiting = subprocess.Popen(command() + ["wait", job_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.environ(), cwd=HERE)
        watching = subprocess.Popen(command() + ["watch", job_id], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.environ(), cwd=HERE)
        time.sleep(1)
        cancelled = self.run_cli("cancel", job_id)
        self.assertExit(cancelled, 0)
        self.assertIn(json.loads(cancelled.stdout)["outcome"], ("cancelled", "cancelling"))
        out, err = waiting.communicate(timeout=60)
        self.assertEqual(waiting.returncode, 4, err)
        self.assertEqual((json.loads(out)["state"], json.loads(out)["failedReason"]), ("cancelled", "cancelled"))
        self.assertIn("job {} was cancelled".format(job_id), err)
        out, err = watching.communicate(timeout=60)
        self.assertEqual(watching.returncode, 4, err)
        self.assertEqual(err.splitlines()[-1], "{} cancelled".format(job_id))
        listed = self.run_cli("list", "--queue", "update", "--state", "cancelled", "--all")
        self.assertExit(listed, 0)
        self.assertIn(job_id, [json.loads(line)["id"] for line in listed.stdout.splitlines()])
        self.assertExit(self.run_cli("cancel", job_id), 6)  # 409: it has finished

    def test_watch_follows_progress_and_log_lines(self) -> None:
        job_id = self.submit("update:server", self.slow_server, "--attempts", "1")
        watched = self.run_cli("watch", job_id)
        self.assertExit(watched, 0)
        printed = watched.stdout.splitlines()
        self.assertEqual([line for line in printed if line.startswith("PROGRESS")], ["PROGRESS 25", "PROGRESS 50", "PROGRESS 75", "PROGRESS 100"])
        self.assertTrue(printed[0].startswith("[jobs-api]"), printed)  # the worker's own lines come too
        self.assertIn("{} completed".format(job_id), watched.stderr)
        as_json = self.run_cli("watch", job_id, "--json")
        self.assertExit(as_json, 0)
        events = [json.loads(line) for line in as_json.stdout.splitlines()]
        self.assertEqual((events[0]["event"], events[-1]["event"]), ("snapshot", "completed"))
        self.assertTrue(events[-1]["id"].endswith("-end"))
        self.assertEqual(events[-1]["data"]["state"], "completed")

    def test_logs(self) -> None:
        job_id = self.submit("update:server", self.slow_server, "--attempts", "1")
        followed = self.run_cli("logs", job_id, "--follow")
        self.assertExit(followed, 0)
        self.assertIn("PROGRESS 100", followed.stdout.splitlines())
        lines = self.run_cli("logs", job_id)
        self.assertExit(lines, 0)
        self.assertEqual(lines.stdout, followed.stdout)
        page = self.run_cli("logs", job_id, "--start", "1", "--limit", "2", "--json")
        self.assertExit(page, 0)
        self.assertEqual((json.loads(page.stdout)["start"], len(json.loads(page.stdout)["lines"])), (1, 2))

    def test_list_servers_and_server_jobs(self) -> None:
        self.submit("scan:quick", self.scan_server)
        self.submit("scan:quick", self.scan_server)
        listed = self.run_cli("list", "--type", "scan:quick", "--limit", "2")
        self.assertExit(listed, 0)
        self.assertEqual([json.loads(line)["type"] for line in listed.stdout.splitlines()], ["scan:quick"] * 2)
        servers = self.run_cli("servers")
        ids = [json.loads(line)["id"] for line in servers.stdout.splitlines()]
        self.assertIn(self.backup_server, ids)
        self.assertEqual(ids, sorted(set(ids)))
        backup = self.run_cli("backup", self.backup_server, "--no-compression", "--wait")
        self.assertExit(backup, 0)
        backups = [json.loads(line) for line in self.run_cli("backups", self.backup_server).stdout.splitlines()]
        self.assertEqual(backups[0]["jobId"], backup.stdout.strip())
        self.assertFalse(backups[0]["compressed"])
        self.assertExit(self.run_cli("restore", self.backup_server, backups[0]["backupId"], "--wait"), 0)
        scan = self.run_cli("scan", self.scan_server, "--type", "quick", "--json")
        self.assertExit(scan, 0)
        self.assertEqual(json.loads(scan.stdout)["status"], "pending")
        delayed = self.submit("scan:quick", self.scan_server, "--delay", "60000")
        promoted = self.run_cli("promote", delayed)
        self.assertExit(promoted, 0)
        self.assertIn(json.loads(promoted.stdout)["state"], ("waiting", "active", "completed"))
        self.assertExit(self.run_cli("update", self.slow_server, "--priority", "1", "--attempts", "1", "--wait"), 0)

    def test_explain(self) -> None:
        job_id = self.submit("scan:quick", self.scan_server, "--delay", "600000")
        cancel_at_the_end(self, self.api, job_id)
        explained = self.run_cli("explain", job_id)
        self.assertExit(explained, 0)
        lines = explained.stdout.splitlines()
        self.assertTrue(lines[0].startswith("{}  delayed  held: ".format(job_id)), lines)
        self.assertIn("DELAYED", [line.split()[0] for line in lines[1:]])
        as_json = self.run_cli("explain", job_id, "--json")
        self.assertExit(as_json, 0)
        data = json.loads(as_json.stdout)
        self.assertEqual((data["jobId"], data["held"]), (job_id, True))
        self.assertIn("DELAYED", [r["code"] for r in data["reasons"]])
        self.assertEqual(len(lines), 1 + len(data["reasons"]))
        self.assertExit(self.run_cli("explain", "scan_doesnotexistdoesnotexis"), 6)

    def test_list_by_server_and_time(self) -> None:
        on_scan = self.submit("scan:quick", self.scan_server)
        self.assertExit(self.run_cli("wait", on_scan), 0)
        created = self.api.get_job(on_scan).created_at
        listed = self.run_cli("list", "--server", self.scan_server, "--since", created, "--all")
        self.assertExit(listed, 0)
        jobs = [json.loads(line) for line in listed.stdout.splitlines()]
        self.assertIn(on_scan, [j["id"] for j in jobs])
        self.assertEqual({j["data"]["serverId"] for j in jobs}, {self.scan_server})
        recent = self.run_cli("list", "--since", "10m", "--until", created, "--server", self.scan_server, "--all")
        self.assertExit(recent, 0)
        self.assertNotIn(on_scan, [json.loads(line)["id"] for line in recent.stdout.splitlines()])
        self.assertExit(self.run_cli("list", "--since", "yesterday"), 2)
        self.assertExit(self.run_cli("list", "--until", "2026-12-01T00:00:00"), 2)

    def test_stuck_exits_3_when_it_finds_jobs(self) -> None:
        admin = {"JOBS_API_TOKEN": self.admin_token}
        job_id = start_long_job(self, self.api, self.long_server)
        stuck = self.run_cli("stuck", "update", "--older-than-ms", "1", env=admin)
        self.assertExit(stuck, 3)
        self.assertIn(job_id, [json.loads(line)["id"] for line in stuck.stdout.splitlines()])
        self.assertExit(self.run_cli("stuck", "backup", env=admin), 0)
        self.assertExit(self.run_cli("metrics", env=admin), 0)

    def test_usage_refused_unauthorized_and_unavailable(self) -> None:
        self.assertExit(self.run_cli("--help"), 0)
        self.assertExit(self.run_cli(), 2)
        self.assertExit(self.run_cli("frobnicate"), 2)
        self.assertExit(self.run_cli("submit", "scan:quick", "--data", "{nope"), 2)
        self.assertExit(self.run_cli("submit", "scan:quick", "--data", "[1]"), 2)
        self.assertExit(self.run_cli("list", "--state", "sleeping"), 2)
        self.assertExit(self.run_cli("get", "scan_x", env={"JOBS_API_TOKEN": ""}), 2)
        self.assertExit(self.run_cli("get", "scan_doesnotexistdoesnotexis"), 6)
        refused = self.run_cli("submit", "scan:quick", "--data", json.dumps({"serverId": "no-such-server"}))
        self.assertExit(refused, 6)
        self.assertIn("UNKNOWN_SERVER", refused.stderr)
        self.assertExit(self.run_cli("list", env={"JOBS_API_TOKEN": "not-a-token"}), 7)
        self.assertExit(self.run_cli("stuck", "update"), 7)  # 403: queue operations need admin
        broken = ScriptedServer([error(500, "INTERNAL", "something unexpected")])
        self.addCleanup(broken.stop)
        self.assertExit(self.run_cli("get", "scan_x", env={"JOBS_API_URL": broken.url}), 8)
        unreachable = self.run_cli("get", "scan_x", env={"JOBS_API_URL": "http://127.0.0.1:9"})
        self.assertExit(unreachable, 8)
        self.assertIn("cannot reach", unreachable.stderr)
        garbled = ScriptedServer([(200, {}, b"<html>not the API</html>")])
        self.addCleanup(garbled.stop)
        self.assertExit(self.run_cli("get", "scan_x", env={"JOBS_API_URL": garbled.url}), 1)


class CliPartsTest(unittest.TestCase):
    """The parts of the command that need no API: --since/--until and explain's text."""

    def test_since_and_until_take_a_time_ago_or_iso_8601_with_a_time_zone(self) -> None:
        since = _time_arg("--since")
        ago = datetime.fromisoformat(since("30m").replace("Z", "+00:00"))
        self.assertAlmostEqual((datetime.now(timezone.utc) - ago).total_seconds(), 1800, delta=5)
        ago = datetime.fromisoformat(since("7d").replace("Z", "+00:00"))
        self.assertAlmostEqual((datetime.now(timezone.utc) - ago) / timedelta(days=1), 7, delta=0.01)
        self.assertTrue(since("90s").endswith("Z"))
        self.assertEqual(since("2026-12-01T08:00:00Z"), "2026-12-01T08:00:00Z")
        self.assertEqual(since("2026-12-01T08:00:00.5+01:00"), "2026-12-01T08:00:00.5+01:00")
        for bad in ("2026-12-01", "2026-12-01T08:00:00", "30", "5w", "soon"):
            with self.assertRaises(argparse.ArgumentTypeError, msg=bad):
                since(bad)

    def test_explain_prints_the_job_then_one_line_per_reason(self) -> None:
        explanation = JobExplanation.from_dict({
            "jobId": "update_a", "queue": "update", "state": "waiting", "held": True, "summary": "it is waiting and not running",
            "attempts": 0, "maxAttempts": 3, "failedReason": None,
            "reasons": [
                {"code": "TENANT_AT_CAP", "message": "tenant t runs 1 of 1", "queue": "update", "tenant": "t", "cap": 1, "active": 1, "holders": ["update_b"]},
                {"code": "WAITING_IN_LINE", "message": "it is number 2 of 2", "queue": "update", "priority": 1, "position": 2, "samePriority": 2, "ahead": 1},
            ],
        })
        self.assertEqual(
            _explanation_text(explanation).splitlines(),
            [
                "update_a  waiting  held: it is waiting and not running",
                "  TENANT_AT_CAP    tenant t runs 1 of 1",
                "  WAITING_IN_LINE  it is number 2 of 2",
            ],
        )
        running = JobExplanation.from_dict(dict(explanation.to_dict(), state="active", held=False, summary="it is running", reasons=[]))
        self.assertEqual(_explanation_text(running), "update_a  active  not held: it is running")


if __name__ == "__main__":
    unittest.main()
