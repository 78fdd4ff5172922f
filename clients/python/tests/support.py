"""What the tests share: the live API's settings, and a scripted HTTP server for the offline tests."""

import http.server
import json
import os
import socketserver
import threading
import time
import unittest
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

#: One scripted answer: (status, headers, JSON body or raw bytes), or a function writing the answer itself.
Answer = Union[Tuple[int, Dict[str, str], Any], Callable[["Handler"], None]]


def env(name: str) -> str:
    """A setting of the live tests; they are skipped without it (the project's test suite sets them all)."""
    value = os.environ.get(name)
    if not value:
        raise unittest.SkipTest("{} is not set: run these through the project's test suite (npm test)".format(name))
    return value


def cancel_at_the_end(test: unittest.TestCase, api: Any, job_id: str) -> None:
    """Cancel the job when the test ends, unless it has ended already."""

    def cancel() -> None:
        try:
            api.cancel_job(job_id)
        except Exception:
            pass  # it has ended already

    test.addCleanup(cancel)


def start_long_job(test: unittest.TestCase, api: Any, server: str) -> str:
    """Start an update of the JOBS_TEST_LONG server (it runs until cancelled) and wait until it runs; it is
    cancelled when the test ends, whatever happens (the update queue runs one job at a time)."""
    submitted = api.update(server, attempts=1)
    cancel_at_the_end(test, api, submitted.job_id)
    deadline = time.monotonic() + 60
    while api.get_job(submitted.job_id).state != "active":
        if time.monotonic() > deadline:
            raise AssertionError("job {} did not start".format(submitted.job_id))
        time.sleep(0.05)
    return str(submitted.job_id)


class Seen:
    """A request the scripted server received."""

    def __init__(self, method: str, path: str, headers: Dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "ScriptedServer"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        answer = self.server.next_answer(seen)
        if callable(answer):
            answer(self)
            return
        status, headers, payload = answer
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Type" not in headers:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = _handle

    def log_message(self, format: str, *args: Any) -> None:
        pass


class ScriptedServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Answers each request with the next scripted answer (the last one again once they run out)."""

    daemon_threads = True

    def __init__(self, answers: List[Answer]) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.answers = answers
        self.seen: List[Seen] = []
        self._lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return "http://127.0.0.1:{}".format(self.server_address[1])

    def next_answer(self, seen: Seen) -> Answer:
        with self._lock:
            self.seen.append(seen)
            return self.answers[min(len(self.seen), len(self.answers)) - 1]

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def ok(data: Any, status: int = 200, headers: Optional[Dict[str, str]] = None) -> Tuple[int, Dict[str, str], Any]:
    return status, headers or {}, {"success": True, "data": data}


def error(status: int, code: str, message: str = "no", headers: Optional[Dict[str, str]] = None, **extra: Any) -> Tuple[int, Dict[str, str], Any]:
    return status, headers or {}, {"success": False, "error": dict(code=code, message=message, **extra), "requestId": "req-{}".format(status)}


def close_without_answer(handler: Handler) -> None:
    """The connection closes after the request was read, with no answer (a crash, a proxy giving up)."""
    handler.close_connection = True
    handler.wfile.flush()
    handler.connection.shutdown(2)


def event_stream(*events: str, status: int = 200) -> Callable[[Handler], None]:
    """An answer writing these server-sent events ("event: x\\nid: 1\\ndata: {...}"), then closing."""

    def write(handler: Handler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        if status == 200:
            for e in events:
                handler.wfile.write(e.encode("utf-8") + b"\n\n")
                handler.wfile.flush()
        handler.close_connection = True

    return write


def sse(event: str, event_id: str, data: Any) -> str:
    return "event: {}\nid: {}\ndata: {}".format(event, event_id, json.dumps(data))


def job(job_id: str = "scan_abc", state: str = "completed", progress: float = 100, failed_reason: Optional[str] = None, result: Any = None) -> Dict[str, Any]:
    """A job as the API shows it."""
    return {
        "id": job_id,
        "queue": job_id.split("_")[0],
        "type": "scan:quick",
        "tenant": "t",
        "state": state,
        "progress": progress,
        "attempts": 1,
        "maxAttempts": 3,
        "data": {"serverId": "web-1"},
        "result": result,
        "failedReason": failed_reason,
        "createdAt": "2024-01-01T00:00:00.000Z",
        "processedAt": None,
        "finishedAt": None,
    }
