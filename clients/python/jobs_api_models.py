"""The Jobs API's data, as Python types. Generated from the zod schemas of src/jobs/ and src/http/schemas.ts
by `npm run models:generate`; do not edit by hand (`npm run models:check` fails when it drifts)."""

from typing import Any, Dict, List, Literal, Optional, TypedDict, Union

__all__ = ["BackupInput", "BackupResult", "RestoreInput", "RestoreResult", "ScanInput", "TlsInfo", "OpenPort", "ClosedPort", "Finding", "ScanResult", "UpdateInput", "UpdateResult", "Job"]


class BackupInput(TypedDict):
    """The data of a backup:manual / backup:scheduled job, defaults applied (Job["data"])."""
    serverId: str
    backup_type: Literal["full", "incremental"]
    compression: bool
    encryption: bool


class BackupResult(TypedDict):
    """What a completed backup:manual / backup:scheduled job holds in "result"."""
    backupId: str
    serverId: str
    type: Literal["full", "incremental"]
    baseId: Optional[str]
    compressed: bool
    encrypted: bool
    files: int
    skipped: int
    deleted: int
    sourceBytes: int
    bytes: int
    sha256: str
    archive: str
    createdAt: str
    verified: Literal[True]


class RestoreInput(TypedDict):
    """The data of a backup:restore job, defaults applied (Job["data"])."""
    serverId: str
    backupId: str


class RestoreResult(TypedDict):
    """What a completed backup:restore job holds in "result"."""
    restoreId: str
    serverId: str
    backupId: str
    chain: List[str]
    directory: str
    files: int
    bytes: int


class ScanInput(TypedDict):
    """The data of a scan:full / scan:quick job, defaults applied (Job["data"])."""
    serverId: str


class TlsInfo(TypedDict):
    subject: str
    issuer: str
    validFrom: str
    validTo: str
    daysLeft: int
    selfSigned: bool
    trusted: bool
    trustError: Optional[str]


class _OpenPortRequired(TypedDict):
    port: int
    latencyMs: float


class OpenPort(_OpenPortRequired, total=False):
    tls: Optional[TlsInfo]


class _ClosedPortRequired(TypedDict):
    port: int
    latencyMs: float


class ClosedPort(_ClosedPortRequired, total=False):
    reason: str


class _FindingRequired(TypedDict):
    kind: Literal["expected-port-closed", "unexpected-port-open", "certificate-expiring", "certificate-expired"]
    port: int
    message: str


class Finding(_FindingRequired, total=False):
    daysLeft: int


class ScanResult(TypedDict):
    """What a completed scan:full / scan:quick job holds in "result"."""
    scanId: str
    serverId: str
    scanType: Literal["full", "quick"]
    host: str
    address: str
    resolveMs: int
    reachable: bool
    open: List[OpenPort]
    closed: List[ClosedPort]
    findings: List[Finding]


class UpdateInput(TypedDict):
    """The data of a update:server job, defaults applied (Job["data"])."""
    serverId: str


class UpdateResult(TypedDict):
    """What a completed update:server job holds in "result"."""
    updateId: str
    serverId: str
    exitCode: Literal[0]
    durationMs: int
    outputLines: int
    outputTail: List[str]


class Job(TypedDict):
    """A job as GET /api/jobs/{id} answers it ("result" is one of the *Result types once completed)."""
    id: str
    queue: Literal["backup", "scan", "update"]
    type: Literal["backup:manual", "backup:scheduled", "backup:restore", "scan:full", "scan:quick", "update:server"]
    tenant: str
    state: Literal["waiting", "active", "completed", "failed", "delayed"]
    progress: float
    attempts: int
    maxAttempts: int
    data: Any
    result: Any
    failedReason: Optional[str]
    createdAt: str
    processedAt: Optional[str]
    finishedAt: Optional[str]
