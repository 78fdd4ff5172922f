#!/usr/bin/env bash
# The Python client's jobsapi command from a shell: jobsctl's exit codes (wait: 4 the job failed, 5 timed out).
set -euo pipefail
export JOBS_API_TOKEN=${JOBS_API_TOKEN:-$TOKEN}
# Installed (pip install ./clients/python), it is `jobsapi`; from the checkout, `python3 -m jobs_api`.
command -v jobsapi > /dev/null || jobsapi() { PYTHONPATH="$(dirname "$0")/../clients/python" python3 -m jobs_api "$@"; }
JOB=$(jobsapi submit scan:full --data '{"serverId": "localhost"}')
if jobsapi wait "$JOB" --timeout 600 > /dev/null; then echo "scan $JOB done"; else
  case $? in 4) echo "scan $JOB failed" ;; 5) echo "scan $JOB still running" ;; *) exit 1 ;; esac
fi
jobsapi list --queue scan --limit 2
