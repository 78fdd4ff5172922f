"""The answers' dataclasses: read from the API's JSON and written back."""

import dataclasses
import unittest

import jobs_api
from jobs_api import (
    BackupResult,
    CancelOutcome,
    Job,
    JobEvent,
    JobPage,
    ReplayedJob,
    RestoreResult,
    ScanResult,
    UnexpectedResponse,
    UpdateResult,
)
from jobs_api.events import parse_sse

from support import job

BACKUP = {
    "backupId": "b1", "serverId": "web-1", "type": "full", "baseId": None, "compressed": True, "encrypted": False,
    "files": 3, "skipped": 0, "deleted": 0, "sourceBytes": 10, "bytes": 8, "sha256": "ab" * 32, "archive": "/x.tar.gz",
    "createdAt": "2024-01-01T00:00:00.000Z", "verified": True,
}
RESTORE = {"restoreId": "r1", "serverId": "web-1", "backupId": "b1", "chain": ["b1"], "directory": "/d", "files": 3, "bytes": 8}
SCAN = {
    "scanId": "s1", "serverId": "web-1", "scanType": "full", "host": "h", "address": "127.0.0.1", "resolveMs": 0, "reachable": True,
    "open": [{"port": 443, "latencyMs": 1.5, "tls": {"subject": "CN=h", "issuer": "CN=h", "validFrom": "a", "validTo": "b", "daysLeft": 3,
                                                     "selfSigned": True, "trusted": False, "trustError": "self-signed"}}],
    "closed": [{"port": 1, "latencyMs": 0.2, "reason": "ECONNREFUSED"}],
    "findings": [{"kind": "certificate-expiring", "port": 443, "message": "soon", "daysLeft": 3}],
}
UPDATE = {"updateId": "u1", "serverId": "web-1", "exitCode": 0, "durationMs": 5, "outputLines": 1, "outputTail": ["ok"]}


class ModelTest(unittest.TestCase):
    def test_attributes_are_snake_case_and_to_dict_gives_the_api_names_back(self) -> None:
        read = Job.from_dict(job(result=BACKUP))
        self.assertEqual((read.id, read.max_attempts, read.failed_reason, read.created_at), ("scan_abc", 3, None, "2024-01-01T00:00:00.000Z"))
        self.assertEqual(read.to_dict(), job(result=BACKUP))
        self.assertEqual(ReplayedJob.from_dict({"from": "a", "to": "b"}).from_, "a")

    def test_a_result_reads_as_its_family_s_model(self) -> None:
        for raw, model in ((BACKUP, BackupResult), (RESTORE, RestoreResult), (SCAN, ScanResult), (UPDATE, UpdateResult)):
            result = Job.from_dict(job(result=raw)).result
            self.assertIsInstance(result, model)
            assert result is not None
            self.assertEqual(result.to_dict(), raw)
        scan = Job.from_dict(job(result=SCAN)).result
        assert isinstance(scan, ScanResult)
        tls = scan.open[0].tls
        assert tls is not None
        self.assertEqual((tls.days_left, scan.closed[0].reason, scan.findings[0].days_left), (3, "ECONNREFUSED", 3))
        self.assertIsNone(Job.from_dict(job(result=None)).result)

    def test_nested_lists_and_optional_parts(self) -> None:
        page = JobPage.from_dict({"jobs": [job("scan_a"), job("scan_b")], "nextCursor": None})
        self.assertEqual([j.id for j in page.jobs], ["scan_a", "scan_b"])
        self.assertIsNone(page.next_cursor)
        removed = CancelOutcome.from_dict({"jobId": "scan_a", "outcome": "removed", "job": None})
        self.assertIsNone(removed.job)

    def test_fields_a_newer_api_adds_are_ignored_and_new_enum_values_read(self) -> None:
        read = Job.from_dict(dict(job(state="paused-by-operator"), somethingNew=1))
        self.assertEqual(read.state, "paused-by-operator")
        self.assertFalse(hasattr(read, "somethingNew"))

    def test_a_malformed_answer_is_an_unexpected_response_naming_the_field(self) -> None:
        broken = job()
        del broken["state"]
        with self.assertRaisesRegex(UnexpectedResponse, "Job: the answer has no 'state'"):
            Job.from_dict(broken)
        with self.assertRaisesRegex(UnexpectedResponse, r"Job\.attempts: expected an integer, got str"):
            Job.from_dict(dict(job(), attempts="1"))
        with self.assertRaisesRegex(UnexpectedResponse, r"Job\.state: expected one of"):
            Job.from_dict(dict(job(), state=5))
        with self.assertRaisesRegex(UnexpectedResponse, r"Job\.result: the object is none of"):
            Job.from_dict(job(result={"what": "ever"}))
        with self.assertRaises(UnexpectedResponse):
            JobPage.from_dict([])

    def test_models_are_frozen_dataclasses_and_every_model_is_exported(self) -> None:
        read = Job.from_dict(job())
        with self.assertRaises(dataclasses.FrozenInstanceError):
            read.state = "failed"  # type: ignore[misc]
        for name in jobs_api.models.__all__:
            self.assertIs(getattr(jobs_api, name), getattr(jobs_api.models, name))
            self.assertIn(name, jobs_api.__all__)


class EventTest(unittest.TestCase):
    def test_parses_a_stream_with_comments_and_multi_line_data(self) -> None:
        lines = [
            b"event: snapshot\n", b"id: 0\n", b'data: {"id": "update_a", "queue": "update", "type": "update:server", "tenant": "t",\n',
            b'data: "state": "active", "progress": 40, "attempts": 1, "maxAttempts": 1, "data": {}, "result": null, "failedReason": null,\n',
            b'data: "createdAt": "x", "processedAt": null, "finishedAt": null}\n', b"\n",
            b": heartbeat 2024\n", b"\n",
            b"event: log\r\n", b"id: 1\r\n", b'data: {"index": 0, "line": "hello"}\r\n', b"\r\n",
            b"event: progress\n", b"id: 1\n", b'data: {"progress": 55}\n', b"\n",
            b"event: removed\n", b"id: 1-end\n", b'data: {"jobId": "update_a"}\n', b"\n",
        ]
        events = [e for e in parse_sse(lines) if e is not None]
        self.assertEqual([e.event for e in events], ["snapshot", "log", "progress", "removed"])
        snapshot = events[0].job
        assert snapshot is not None
        self.assertEqual((snapshot.state, events[0].progress), ("active", 40.0))
        self.assertEqual((events[1].line, events[1].id), ("hello", "1"))
        self.assertEqual(events[2].progress, 55.0)
        self.assertTrue(events[3].terminal)
        self.assertEqual(events[3].id, "1-end")
        self.assertIsNone(events[3].job)
        self.assertIn(None, list(parse_sse(lines)))  # the heartbeat, for a reader to look up between events
        self.assertEqual(JobEvent("log", "1", {"index": 0, "line": "x"}).to_dict(), {"event": "log", "id": "1", "data": {"index": 0, "line": "x"}})


if __name__ == "__main__":
    unittest.main()
