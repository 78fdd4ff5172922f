"""`jobsapi` (and `python -m jobs_api`): the Jobs API from a shell, with jobsctl's environment and exit codes."""

import argparse
import json
import os
import re
import sys
import traceback
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Dict, Iterable, NoReturn, Optional, Sequence

from ._endpoints import iso_instant
from .client import JobsApi
from .errors import (
    JobEndedError,
    JobsApiError,
    MissingTokenError,
    RefusedError,
    UnauthorizedError,
    UnavailableError,
    WaitTimeout,
)
from .models import Job, JobExplanation

__all__ = ["main", "EXIT", "exit_code"]


class EXIT:
    """The exit codes, the same as jobsctl's (src/cli/jobsctl.ts)."""

    OK = 0
    #: Something unexpected (a bug, a malformed answer).
    ERROR = 1
    #: Wrong usage: unknown command or option, a missing value, no token.
    USAGE = 2
    #: The command found what it looks for (stuck: stuck jobs).
    FOUND = 3
    #: The job failed or was cancelled (wait, get --wait, watch, --wait).
    JOB_FAILED = 4
    #: The wait ended before the job did.
    TIMEOUT = 5
    #: The API refused the request (400, 404, 409, 422, 429).
    REFUSED = 6
    #: The token is missing, invalid or lacks the scope (401, 403).
    UNAUTHORIZED = 7
    #: The API cannot be reached or is unavailable (connection refused, 5xx).
    UNAVAILABLE = 8


#: How long --wait and `wait` wait by default, in seconds (as jobsctl).
DEFAULT_TIMEOUT = 600.0

EPILOG = """environment:
  JOBS_API_URL    the API (default http://localhost:3000)
  JOBS_API_TOKEN  a bearer token (npm run token -- --sub you --scope "jobs:read jobs:write")

exit codes (the same as jobsctl's):
  0 ok  1 unexpected  2 usage  3 found  4 the job failed or was cancelled  5 the wait timed out
  6 refused (400/404/409/422/429)  7 unauthorized (401/403)  8 unavailable (unreachable, 5xx)
"""


class UsageError(Exception):
    """A wrong argument found after parsing (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT.USAGE, "{}: {}\n".format(self.prog, message))


def exit_code(err: BaseException) -> int:
    """The exit code for an error of this package."""
    if isinstance(err, (MissingTokenError, UsageError)):
        return EXIT.USAGE
    if isinstance(err, JobEndedError):
        return EXIT.JOB_FAILED
    if isinstance(err, WaitTimeout):
        return EXIT.TIMEOUT
    if isinstance(err, UnauthorizedError):
        return EXIT.UNAUTHORIZED
    if isinstance(err, UnavailableError):
        return EXIT.UNAVAILABLE
    if isinstance(err, RefusedError):
        return EXIT.REFUSED
    return EXIT.ERROR


def _print_json(value: Any, lines: bool = False) -> None:
    print(json.dumps(value, separators=(",", ":")) if lines else json.dumps(value, indent=2))


def _json_arg(text: str) -> Dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError as err:
        raise UsageError("--data must be JSON, e.g. '{{\"serverId\": \"web-1\"}}': {}".format(err)) from None
    if not isinstance(value, dict):
        raise UsageError("--data must be a JSON object, e.g. '{\"serverId\": \"web-1\"}'")
    return value


#: A time ago for --since and --until: 90s, 30m, 6h, 7d.
_AGO = re.compile(r"^(\d{1,6})([smhd])$")
_AGO_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _time_arg(name: str) -> Callable[[str], str]:
    """An argparse type for a point in time: a time ago (30m, 6h, 7d) or ISO 8601 with a time zone; answers ISO 8601."""

    def parse(text: str) -> str:
        ago = _AGO.match(text.strip())
        if ago:
            then = datetime.now(timezone.utc) - timedelta(seconds=int(ago.group(1)) * _AGO_SECONDS[ago.group(2)])
            return iso_instant(name, then) or ""
        try:
            return iso_instant(name, text) or ""
        except ValueError:
            raise argparse.ArgumentTypeError(
                "must be a time ago (30m, 6h, 7d) or ISO 8601 with a time zone (2026-12-01T08:00:00Z), got {!r}".format(text)
            ) from None

    return parse


def _explanation_text(e: JobExplanation) -> str:
    """The answer for a person, as jobsctl job:explain prints it: the job and its short answer, then one line per reason."""
    width = max([len(r.code) for r in e.reasons] or [0])
    lines = ["{}  {}  {}: {}".format(e.job_id, e.state, "held" if e.held else "not held", e.summary)]
    lines += ["  {}  {}".format(r.code.ljust(width), r.message) for r in e.reasons]
    return "\n".join(lines)


def _progress_reporter(job_id: str) -> Optional[Callable[[Job], None]]:
    """On a terminal, the job's state and progress on stderr while waiting; nothing otherwise."""
    if not sys.stderr.isatty():
        return None

    def report(job: Job) -> None:
        sys.stderr.write("\r{}: {} {:g}%   ".format(job_id, job.state, job.progress))
        sys.stderr.flush()

    return report


def _wait(api: JobsApi, job_id: str, timeout: float, show: bool) -> int:
    """Wait for the job; print it (with `show`); 0 when it completed, 4 when it failed or went, 5 on timeout."""
    report = _progress_reporter(job_id)
    try:
        job = api.wait(job_id, timeout=timeout, on_progress=report)
    except WaitTimeout as err:
        if show:
            _print_json(err.job.to_dict())
        raise
    except JobEndedError as err:
        job_seen = getattr(err, "job", None)
        if show and isinstance(job_seen, Job):
            _print_json(job_seen.to_dict())
        raise
    finally:
        if report is not None:
            sys.stderr.write("\n")
    if show:
        _print_json(job.to_dict())
    return EXIT.OK


def _watch(api: JobsApi, job_id: str, as_json: bool, logs_only: bool = False, last_event_id: Optional[str] = None) -> int:
    """Print the job's events until it ends; 0 when it completed, 4 when it failed or was removed."""
    tty = sys.stderr.isatty()
    last = ""
    for event in api.watch(job_id, last_event_id=last_event_id):
        last = event.event
        if as_json:
            _print_json(event.to_dict(), lines=True)
            sys.stdout.flush()
            continue
        if event.event == "log":
            print(event.line if event.line is not None else "")
            sys.stdout.flush()
        elif logs_only:
            continue
        elif event.event in ("snapshot", "progress") and event.progress is not None:
            width = 30
            done = int(width * max(0.0, min(event.progress, 100.0)) / 100)
            bar = "[{}{}] {:g}%".format("#" * done, "." * (width - done), event.progress)
            sys.stderr.write("\r{} {}".format(job_id, bar) if tty else "{} progress {:g}%\n".format(job_id, event.progress))
            sys.stderr.flush()
        if event.terminal and not logs_only:
            job = event.job
            reason = ""
            if job is not None and job.failed_reason and job.failed_reason != event.event:  # not "cancelled (cancelled)"
                reason = " ({})".format(job.failed_reason)
            sys.stderr.write("{}{} {}{}\n".format("\n" if tty else "", job_id, event.event, reason))
    if last == "completed":
        return EXIT.OK
    if last in ("failed", "cancelled", "removed"):
        return EXIT.JOB_FAILED
    # The stream said nothing more (the job had ended and last_event_id said it was seen): ask the job.
    return EXIT.OK if api.get_job(job_id).state == "completed" else EXIT.JOB_FAILED


def _build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = _Parser(
        prog="jobsapi",
        description="The Jobs API from a shell: enqueue jobs, wait for them, watch them, read their logs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="jobsapi {}".format(__version__))
    sub = parser.add_subparsers(dest="command", metavar="<command>", parser_class=_Parser)
    sub.required = True

    def command(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
        return p

    def wait_options(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--wait", action="store_true", help="wait until the job ends: exit 0 when it completed, 4 when it failed ({})".format(what))
        p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="give up waiting after this long: exit 5 (default 600)")

    def enqueue_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--priority", type=int, help="1 (critical) .. 5 (background)")
        p.add_argument("--delay", type=int, metavar="MS", help="wait this many milliseconds before running")
        p.add_argument("--attempts", type=int, help="attempts in all, 1..10 (default 3)")
        p.add_argument("--idempotency-key", metavar="KEY", help="send again safely: the same key answers with the same job")
        p.add_argument("--json", action="store_true", help="print the API's answer as JSON instead of the job id")
        wait_options(p, "the job id is printed first")

    p = command("submit", "enqueue a job; prints its id")
    p.add_argument("type", help="the job type, e.g. scan:full")
    p.add_argument("--data", required=True, help='the job data as JSON, e.g. \'{"serverId": "web-1"}\'')
    enqueue_options(p)

    p = command("get", "a job as JSON; --wait waits for it to end")
    p.add_argument("job_id", metavar="ID")
    wait_options(p, "printing it as it ended")

    p = command("wait", "wait for a job to end (long poll); prints it; exit 0 completed, 4 failed, 5 timed out")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS", help="give up after this long: exit 5 (default 600)")

    p = command("watch", "follow a job's progress and log lines live until it ends; exit 0 completed, 4 failed")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="one JSON event per line ({event, id, data}) instead")

    p = command("logs", "a job's log lines")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--start", type=int, default=0, help="the first line, 0 = the oldest")
    p.add_argument("--limit", type=int, help="at most this many lines (1..1000, default 100)")
    p.add_argument("--follow", action="store_true", help="print the lines as they come until the job ends (exit 0 completed, 4 failed)")
    p.add_argument("--json", action="store_true", help="the API's page as JSON")

    for name, help in (
        ("cancel", "stop a job (a waiting one is removed, a running one fails as cancelled)"),
        ("retry", "run a failed job again"),
        ("remove", "remove a job (not while it runs)"),
        ("promote", "run a delayed job now"),
    ):
        p = command(name, help)
        p.add_argument("job_id", metavar="ID")

    p = command("explain", "why a job is not running: every reason that holds it, one per line")
    p.add_argument("job_id", metavar="ID")
    p.add_argument("--json", action="store_true", help="the API's answer as JSON instead")

    p = command("list", "your jobs as JSON lines, newest first")
    p.add_argument("--queue", choices=("backup", "scan", "update"))
    p.add_argument("--state", choices=("waiting", "active", "completed", "failed", "delayed", "cancelled"))
    p.add_argument("--type", help="e.g. scan:full")
    p.add_argument("--server", metavar="SERVER", help="only the jobs on this server")
    p.add_argument("--since", metavar="TIME", type=_time_arg("--since"), help="only jobs created since: 30m, 6h, 7d ago, or ISO 8601 (2026-12-01T08:00:00Z)")
    p.add_argument("--until", metavar="TIME", type=_time_arg("--until"), help="only jobs created before: the same forms as --since")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--all", action="store_true", help="every job, following the cursors")

    command("servers", "the servers your token may act on, by id, as JSON lines (every page)")

    p = command("backup", "back up a server; prints the job id")
    p.add_argument("server_id", metavar="SERVER")
    p.add_argument("--type", dest="backup_type", choices=("full", "incremental"))
    p.add_argument("--no-compression", action="store_true")
    p.add_argument("--encryption", action="store_true")
    enqueue_options(p)

    p = command("scan", "scan a server's declared ports; prints the job id")
    p.add_argument("server_id", metavar="SERVER")
    p.add_argument("--type", dest="scan_type", choices=("full", "quick"))
    enqueue_options(p)

    p = command("update", "run a server's declared update command; prints the job id")
    p.add_argument("server_id", metavar="SERVER")
    enqueue_options(p)

    p = command("backups", "a server's completed backups, newest first, as JSON lines")
    p.add_argument("server_id", metavar="SERVER")

    p = command("restore", "restore a backup into a new directory; prints the job id")
    p.add_argument("server_id", metavar="SERVER")
    p.add_argument("backup_id", metavar="BACKUP")
    enqueue_options(p)

    p = command("stuck", "jobs active for too long, as JSON lines; exit 3 when there are some")
    p.add_argument("queue", choices=("backup", "scan", "update"))
    p.add_argument("--older-than-ms", type=int, metavar="MS", help="active for longer than this (default 10 minutes)")

    command("metrics", "counts per queue and the health verdict, as JSON")
    return parser


def _enqueued(api: JobsApi, args: argparse.Namespace, answer: Any, job_id: str) -> int:
    if args.json:
        _print_json(answer.to_dict())
    else:
        print(job_id)
    sys.stdout.flush()
    return _wait(api, job_id, args.timeout, show=False) if args.wait else EXIT.OK


def _options(args: argparse.Namespace) -> Dict[str, Any]:
    return {"priority": args.priority, "delay_ms": args.delay, "attempts": args.attempts, "idempotency_key": args.idempotency_key}


def _lines(items: Iterable[Any]) -> None:
    for item in items:
        _print_json(item.to_dict(), lines=True)


def _run(args: argparse.Namespace) -> int:
    api = JobsApi()
    cmd: str = args.command
    if cmd == "submit":
        data = _json_arg(args.data)
        submitted = api.submit(args.type, data, **_options(args))
        return _enqueued(api, args, submitted, submitted.job_id)
    if cmd == "get":
        if args.wait:
            return _wait(api, args.job_id, args.timeout, show=True)
        _print_json(api.get_job(args.job_id).to_dict())
        return EXIT.OK
    if cmd == "wait":
        return _wait(api, args.job_id, args.timeout, show=True)
    if cmd == "watch":
        return _watch(api, args.job_id, args.json)
    if cmd == "logs":
        if args.follow:
            return _watch(api, args.job_id, False, logs_only=True, last_event_id=str(args.start) if args.start else None)
        page = api.job_logs(args.job_id, start=args.start, limit=args.limit)
        if args.json:
            _print_json(page.to_dict())
        else:
            for line in page.lines:
                print(line)
        return EXIT.OK
    if cmd == "explain":
        explanation = api.explain_job(args.job_id)
        if args.json:
            _print_json(explanation.to_dict())
        else:
            print(_explanation_text(explanation))
        return EXIT.OK
    if cmd in ("cancel", "retry", "remove", "promote"):
        action: Dict[str, Callable[[str], Any]] = {
            "cancel": api.cancel_job,
            "retry": api.retry_job,
            "remove": api.remove_job,
            "promote": api.promote_job,
        }
        _print_json(action[cmd](args.job_id).to_dict())
        return EXIT.OK
    if cmd == "list":
        if args.limit < 1:
            raise UsageError("--limit must be 1 or more")
        jobs = api.iter_jobs(
            queue=args.queue,
            state=args.state,
            type=args.type,
            server_id=args.server,
            created_after=args.since,
            created_before=args.until,
            page_size=100 if args.all else min(args.limit, 100),
        )
        for i, job in enumerate(jobs):
            if not args.all and i >= args.limit:
                break
            _print_json(job.to_dict(), lines=True)
        return EXIT.OK
    if cmd == "servers":
        _lines(api.iter_servers())
        return EXIT.OK
    if cmd == "backup":
        backup = api.backup(
            args.server_id,
            backup_type=args.backup_type,
            compression=False if args.no_compression else None,
            encryption=True if args.encryption else None,
            **_options(args),
        )
        return _enqueued(api, args, backup, backup.job_id)
    if cmd == "scan":
        scan = api.scan(args.server_id, scan_type=args.scan_type, **_options(args))
        return _enqueued(api, args, scan, scan.job_id)
    if cmd == "update":
        update = api.update(args.server_id, **_options(args))
        return _enqueued(api, args, update, update.job_id)
    if cmd == "backups":
        _lines(api.list_backups(args.server_id))
        return EXIT.OK
    if cmd == "restore":
        restore = api.restore(args.server_id, args.backup_id, **_options(args))
        return _enqueued(api, args, restore, restore.job_id)
    if cmd == "stuck":
        stuck = api.stuck_jobs(args.queue, older_than_ms=args.older_than_ms)
        _lines(stuck.jobs)
        return EXIT.FOUND if stuck.jobs else EXIT.OK
    if cmd == "metrics":
        _print_json(api.queue_metrics().to_dict())
        return EXIT.OK
    raise UsageError("unknown command {}".format(cmd))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line `argv` (default sys.argv[1:]) and answer its exit code."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else EXIT.USAGE
    try:
        return _run(args)
    except (JobsApiError, UsageError) as err:
        print("jobsapi: {}".format(err), file=sys.stderr)
        return exit_code(err)
    except BrokenPipeError:
        # The reader went away (`jobsapi list | head -1`): nothing more to say to it.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT.OK
    except KeyboardInterrupt:
        return 130
    except Exception:
        print("jobsapi: unexpected error (please report it):", file=sys.stderr)
        traceback.print_exc()
        return EXIT.ERROR


def run() -> NoReturn:
    """The console script's entry point."""
    sys.exit(main())


if __name__ == "__main__":
    run()
