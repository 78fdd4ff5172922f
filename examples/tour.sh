#!/usr/bin/env bash
# A tour of the API with curl. Needs TOKEN (printed by `npm start`); API defaults to http://localhost:3000.
set -euo pipefail
API=${API:-http://localhost:3000}
AUTH="Authorization: Bearer $TOKEN"
JSON='Content-Type: application/json'
field() { python3 -c "import json,sys; print(json.load(sys.stdin)['data']$1)"; }

# The servers your token may act on, by id, a page at a time (commands are never shown): limit 1..1000
# (default 100); pass nextCursor back as cursor until it is null
curl -s --fail-with-body "$API/api/servers?limit=100" -H "$AUTH"; echo
curl -s --fail-with-body $API/api/servers/localhost -H "$AUTH"; echo

# Scan its ports, back it up, update it: each answers 202 with the job id
SCAN=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/scan -H "$AUTH" -H "$JSON" -d '{"scan_type": "full"}' | field "['jobId']")
BACKUP=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/backup -H "$AUTH" -H "$JSON" \
  -d '{"backup_type": "incremental", "compression": true}' | field "['jobId']")
UPDATE=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/update -H "$AUTH" | field "['jobId']")
echo "scan $SCAN, backup $BACKUP, update $UPDATE"

# The same through the generic endpoint; options are priority (1..5), delay (ms), attempts (1..10), backoffMs and backoffMaxMs.
# An Idempotency-Key makes it safe to send again: the repeat answers 200 with the same job.
curl -s --fail-with-body -X POST $API/api/jobs -H "$AUTH" -H "$JSON" -H 'Idempotency-Key: tour-quick-scan' \
  -d '{"type": "scan:quick", "data": {"serverId": "localhost"}, "options": {"priority": 1}}'; echo

# Many jobs at once (up to 1000), all or none: a bad item refuses the list with 400 BULK_INVALID
curl -s --fail-with-body -X POST $API/api/jobs/bulk -H "$AUTH" -H "$JSON" \
  -d '{"jobs": [{"type": "scan:quick", "data": {"serverId": "localhost"}}, {"type": "scan:full", "data": {"serverId": "localhost"}}]}'; echo

# Wait for a job without polling: the answer comes when it ends (or after waitMs, at most 60000)
curl -s --fail-with-body "$API/api/jobs/$BACKUP?waitMs=30000" -H "$AUTH" | field "['state']"

# The server's completed backups, newest first; restore the newest into a new directory under DATA_DIR/restores/
BACKUP_ID=$(curl -s --fail-with-body $API/api/servers/localhost/backups -H "$AUTH" | field "[0]['backupId']")
RESTORE=$(curl -s --fail-with-body -X POST $API/api/servers/localhost/backups/$BACKUP_ID/restore -H "$AUTH" | field "['jobId']")
curl -s --fail-with-body "$API/api/jobs/$RESTORE?waitMs=30000" -H "$AUTH" | field "['result']['directory']"

# The server's recent scans, newest first, with certificates and findings
curl -s --fail-with-body "$API/api/jobs/$SCAN?waitMs=30000" -H "$AUTH" > /dev/null
curl -s --fail-with-body "$API/api/servers/localhost/scans?limit=1" -H "$AUTH"; echo

# Status of one job, and its log (an update's output between the worker's own [jobs-api] lines)
curl -s --fail-with-body "$API/api/jobs/$UPDATE?waitMs=30000" -H "$AUTH"; echo
curl -s --fail-with-body "$API/api/jobs/$UPDATE/logs?start=0&limit=100" -H "$AUTH"; echo

# Stop a job: a delayed one is simply removed
LATER=$(curl -s --fail-with-body -X POST $API/api/jobs -H "$AUTH" -H "$JSON" \
  -d '{"type": "scan:quick", "data": {"serverId": "localhost"}, "options": {"delay": 60000}}' | field "['jobId']")
curl -s --fail-with-body -X POST $API/api/jobs/$LATER/cancel -H "$AUTH"; echo

# List your jobs, newest first; filter by queue, state, type; page with nextCursor
curl -s --fail-with-body "$API/api/jobs?queue=scan&state=completed&limit=5" -H "$AUTH" | field "['nextCursor']"

# A failing update: one attempt; it fails with the exit code and the last lines of output
FAIL=$(curl -s --fail-with-body -X POST $API/api/servers/flaky-updater/update -H "$AUTH" -H "$JSON" \
  -d '{"options": {"attempts": 1}}' | field "['jobId']")
curl -s --fail-with-body "$API/api/jobs/$FAIL?waitMs=30000" -H "$AUTH" | field "['failedReason']"
# Retry it (a failed job only; anything else is 409); once it has failed again, remove it
curl -s --fail-with-body -X POST $API/api/jobs/$FAIL/retry -H "$AUTH"; echo
curl -s --fail-with-body "$API/api/jobs/$FAIL?waitMs=30000" -H "$AUTH" > /dev/null
curl -s --fail-with-body -X DELETE $API/api/jobs/$FAIL -H "$AUTH"; echo

# Counts per queue and in total; the health verdict; probes without a token
curl -s --fail-with-body $API/api/jobs/stats/all -H "$AUTH"; echo
curl -s --fail-with-body $API/api/metrics/queues -H "$AUTH"; echo
curl -s --fail-with-body $API/health; echo
curl -s --fail-with-body $API/ready; echo
