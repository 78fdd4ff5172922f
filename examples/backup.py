"""Back up a server and wait for it, with the Python client (pip install ./clients/python).

    JOBS_API_TOKEN=$TOKEN python3 examples/backup.py    # or, without installing: PYTHONPATH=clients/python
"""
from jobs_api import BackupResult, JobFailedError, JobsApi

api = JobsApi()  # JOBS_API_URL (default http://localhost:3000) and JOBS_API_TOKEN
started = api.backup("localhost", backup_type="incremental")
try:
    done = api.wait(started.job_id, timeout=600, on_progress=lambda job: print("progress", job.progress))
except JobFailedError as err:
    raise SystemExit("backup failed: " + err.reason)
assert isinstance(done.result, BackupResult)  # a completed backup's result, typed
print("backup", done.result.backup_id, "sha256", done.result.sha256)

# Its events, as they happened (a finished job: the snapshot, its log, then "completed")
for event in api.watch(started.job_id):
    print(event.event, event.line or "")
