#!/usr/bin/env bash
# The Python client from a shell: exit codes to chain on (wait exits 1 when the job failed).
set -euo pipefail
cd "$(dirname "$0")/../clients/python"
export JOBS_API_TOKEN=${JOBS_API_TOKEN:-$TOKEN}
JOB=$(python3 -m jobs_api_client submit scan:full --data '{"serverId": "localhost"}')
python3 -m jobs_api_client wait "$JOB" --timeout 600 > /dev/null && echo "scan $JOB done"
python3 -m jobs_api_client list --queue scan --limit 2
