#!/usr/bin/env bash
# Follow an update as it runs: server-sent events (snapshot, progress, log lines, then completed or failed).
set -euo pipefail
API=${API:-http://localhost:3000}
AUTH="Authorization: Bearer $TOKEN"
JOB=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/update -H "$AUTH" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["jobId"])')
# -N: print events as they come; the stream ends after the terminal event.
curl -sN --fail-with-body $API/api/jobs/$JOB/events -H "$AUTH"
