"""The import's lease: created per import, deleted after it, reclaimed if its import died.

Everything an import writes lives under a lease that expires on its own after
24 hours (containerd's `containerd.io/gc.expire` label), so that a crash never
leaks content for good. An import deletes its lease when it ends, failed or not.
When it cannot (containerd died, or our process did), the lease — and the
partial ingests under it — would linger until it expires; so every import first
reclaims the leases of dead imports: ours whose owner is gone.

A lease records its owner in the `node-containerd/preseed.owner` label as
`<boot id>:<pid>:<process start time>`. The owner is dead when the machine has
rebooted since, when no process with that pid and start time exists, or — for
leases of this very process — when no import of this process is using it any
more (an import thread that failed while containerd was down). A dead import's
ingests (refs `<lease>-<digest>`) are aborted and its lease is deleted
synchronously, so containerd's GC reclaims the rest at once.
"""

from __future__ import annotations

import datetime
import os
import secrets
import threading

from actors.containerd.api.client import ContainerdClient
from actors.containerd.api.errors import ContainerdError
from messages.containerd.services.content.v1 import content_pb2 as cpb
from messages.containerd.services.leases.v1 import leases_pb2 as lpb

__all__ = ["LEASE_EXPIRY", "OWNER_LABEL", "create_lease", "delete_lease", "reclaim_dead_leases"]


LEASE_EXPIRY = datetime.timedelta(hours=24)
OWNER_LABEL = "node-containerd/preseed.owner"
_FILE_LABEL = "node-containerd/preseed.file"
_live: set[str] = set()
_live_lock = threading.Lock()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return "unknown"


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _owner() -> str:
    pid = os.getpid()
    return f"{_boot_id()}:{pid}:{_start_time(pid)}"


def _dead(lease_id: str, owner: str) -> bool:
    boot, _, rest = owner.partition(":")
    pid_text, _, started = rest.partition(":")
    if boot != _boot_id() or not pid_text.isdigit():
        return True
    pid = int(pid_text)
    if pid == os.getpid():
        with _live_lock:
            return lease_id not in _live
    return _start_time(pid) != started


def create_lease(client: ContainerdClient, namespace: str, file: str) -> str:
    """Create an import's lease (expiring in 24 h, owned by this process); return its id.

    Raises:
        ContainerdError: containerd refused it.
    """
    expiry = datetime.datetime.now(datetime.UTC) + LEASE_EXPIRY
    request = lpb.CreateRequest(
        id=f"node-containerd-preseed-{secrets.token_hex(8)}",
        labels={
            "containerd.io/gc.expire": expiry.strftime("%Y-%m-%dT%H:%M:%SZ"),
            OWNER_LABEL: _owner(),
            _FILE_LABEL: file[:1024],
        },
    )
    with _live_lock:
        _live.add(request.id)
    try:
        client.call(client.leases.Create, request, what="lease create", namespace=namespace)
    except BaseException:
        with _live_lock:
            _live.discard(request.id)
        raise
    return str(request.id)


def delete_lease(
    client: ContainerdClient, namespace: str, lease: str, *, sync: bool = False
) -> str | None:
    """Delete a lease; return why it could not be (it then expires on its own), or None."""
    with _live_lock:
        _live.discard(lease)
    try:
        client.call(
            client.leases.Delete,
            lpb.DeleteRequest(id=lease, sync=sync),
            what="lease delete",
            namespace=namespace,
        )
    except ContainerdError as e:
        return f"lease {lease!r} was not deleted (it expires on its own): {e}"
    return None


def reclaim_dead_leases(client: ContainerdClient, namespace: str) -> list[str]:
    """Abort the ingests of, and delete, the leases of dead imports in a namespace.

    Returns:
        The ids of the leases reclaimed.

    Raises:
        ContainerdError: containerd failed the listing.
    """
    reply = client.call(
        client.leases.List,
        lpb.ListRequest(filters=[f'labels."{OWNER_LABEL}"']),
        what="lease list",
        namespace=namespace,
    )
    dead = [
        lease.id for lease in reply.leases if _dead(lease.id, lease.labels.get(OWNER_LABEL, ""))
    ]
    if not dead:
        return []
    statuses = client.call(
        client.content.ListStatuses,
        cpb.ListStatusesRequest(),
        what="ingest list",
        namespace=namespace,
    ).statuses
    for lease in dead:
        for status in statuses:
            if status.ref.startswith(f"{lease}-"):
                try:
                    client.call(
                        client.content.Abort,
                        cpb.AbortRequest(ref=status.ref),
                        what=f"abort of ingest {status.ref!r}",
                        namespace=namespace,
                    )
                except ContainerdError:
                    pass
        delete_lease(client, namespace, lease, sync=True)
    return dead
