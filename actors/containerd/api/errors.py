"""The one error of containerd's clients: `ContainerdError`.

Every client of containerd's API (`client.ContainerdClient`, the CRI client, the
Version probe's callers) turns a failed call into a `ContainerdError` whose message
says what an operator needs: the socket does not exist, containerd is not
answering, or it refused a named call, with gRPC's status and details. The status
code stays reachable through `client.code_of`.
"""

from __future__ import annotations

__all__ = ["ContainerdError"]


class ContainerdError(Exception):
    """containerd is missing, not answering, or refused a call; `str()` is the message."""
