"""Back up a server and wait for it, with the Python client (clients/python/jobs_api_client.py).

    PYTHONPATH=clients/python JOBS_API_TOKEN=$TOKEN python3 examples/backup.py
"""
from jobs_api_client import Client, JobFailedError

client = Client()  # JOBS_API_URL (default http://localhost:3000) and JOBS_API_TOKEN
job = client.backup("localhost", backup_type="incremental")
try:
    done = client.wait_for_completion(job["jobId"], timeout=600,
                                      on_progress=lambda progress, _job: print("progress", progress))
except JobFailedError as err:
    raise SystemExit("backup failed: " + err.reason)
print("backup", done["result"]["backupId"], "sha256", done["result"]["sha256"])

# Its events, as they happened (a finished job: the snapshot, its log, then "completed")
for event in client.events(job["jobId"]):
    print(event["event"], event["data"] if event["event"] == "log" else "")
