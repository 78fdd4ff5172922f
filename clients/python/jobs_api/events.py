"""A job's server-sent events (GET /api/jobs/{id}/events), read from the stream."""

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Optional

from ._model import decode
from .models import Job

__all__ = ["JobEvent", "TERMINAL_EVENTS", "parse_sse"]

#: The events after which a job's stream ends: it completed, failed (or was cancelled), or was removed.
TERMINAL_EVENTS = ("completed", "failed", "cancelled", "removed")


@dataclass(frozen=True)
class JobEvent:
    """One event of a job's stream.

    `event` is `snapshot` (the job, first, and again after each reconnection), `progress` ({progress}),
    `log` ({index, line}), then one of `completed`, `failed`, `cancelled` (the job) or `removed` ({jobId}). `id` is what
    a reconnection sends as Last-Event-ID (the number of log lines seen; the last event's ends in `-end`).
    """

    event: str
    id: Optional[str]
    #: The event's JSON, as the API sent it.
    data: Any

    @property
    def terminal(self) -> bool:
        """Whether the stream ends after this event (the job completed, failed, was cancelled or removed)."""
        return self.event in TERMINAL_EVENTS

    @property
    def job(self) -> Optional[Job]:
        """The job, for `snapshot`, `completed`, `failed` and `cancelled`."""
        if self.event in ("snapshot", "completed", "failed", "cancelled") and isinstance(self.data, dict):
            return decode(Job, self.data)
        return None

    @property
    def progress(self) -> Optional[float]:
        """The progress (0..100) this event tells: a `progress` event's, or the job's."""
        if self.event == "progress" and isinstance(self.data, dict):
            value = self.data.get("progress")
            return float(value) if isinstance(value, (int, float)) else None
        job = self.job
        return job.progress if job is not None else None

    @property
    def line(self) -> Optional[str]:
        """A `log` event's line."""
        if self.event == "log" and isinstance(self.data, dict):
            value = self.data.get("line")
            return value if isinstance(value, str) else None
        return None

    def to_dict(self) -> Dict[str, Any]:
        return {"event": self.event, "id": self.id, "data": self.data}


def parse_sse(lines: Iterable[bytes]) -> Iterator[Optional[JobEvent]]:
    """The events of a text/event-stream, read line by line; None for each comment (a heartbeat), so that a
    reader can look up between events."""
    event: Optional[str] = None
    event_id: Optional[str] = None
    data: List[str] = []
    for raw in lines:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                payload = "\n".join(data)
                try:
                    parsed: Any = json.loads(payload)
                except ValueError:
                    parsed = payload
                yield JobEvent(event or "message", event_id, parsed)
            event, event_id, data = None, None, []
        elif line.startswith(":"):
            yield None
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value
            elif name == "id":
                event_id = value
