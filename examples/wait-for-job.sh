#!/usr/bin/env bash
# Start a backup and wait for it without busy polling; exit 1 if it fails. Needs TOKEN.
set -euo pipefail
API=${API:-http://localhost:3000}
AUTH="Authorization: Bearer $TOKEN"
JOB=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/backup -H "$AUTH" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["jobId"])')
while :; do
  # Answers as soon as the job ends, or after 30 s with its state then.
  STATE=$(curl -s --fail-with-body "$API/api/jobs/$JOB?waitMs=30000" -H "$AUTH" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["state"])')
  case $STATE in
    completed) echo "backup $JOB completed"; break ;;
    failed) echo "backup $JOB failed" >&2; exit 1 ;;
  esac
done
