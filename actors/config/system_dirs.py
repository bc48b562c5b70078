"""Directories no state directory may be: the system's own, and kernel file systems.

Pure and standard library only; `actors.config.load` refuses them as `state_dir`.
"""

from __future__ import annotations

__all__ = ["KERNEL_TREES", "SYSTEM_DIRS", "refused_state_dir"]

#: Directories the agent must never take as its state directory: it makes the state
#: directory 0700 (and grants the sandbox user search on it), which would lock every
#: other user and service out of these. Their subdirectories below are refused too
#: when they are shared by the system (`/var/lib`), not when they are a place of
#: one's own (`/var/lib/node-containerd`).
SYSTEM_DIRS = frozenset(
    {
        "/",
        *(
            f"/{name}"
            for name in (
                "bin boot dev etc home lib lib32 lib64 libx32 media mnt opt proc root run "
                "sbin srv sys tmp usr var"
            ).split()
        ),
        *(
            f"/usr/{name}"
            for name in "bin include lib lib32 lib64 libexec local sbin share src".split()
        ),
        *(f"/var/{name}" for name in "cache lib local lock log mail opt run spool tmp".split()),
        "/run/lock",
        "/run/user",
        "/usr/local/bin",
        "/usr/local/lib",
        "/usr/local/sbin",
        "/usr/local/share",
    }
)
#: Trees no state directory may lie in: kernel file systems.
KERNEL_TREES = ("/proc", "/sys", "/dev")


def refused_state_dir(path: str) -> str | None:
    """Why `path` (absolute, normalised) cannot be a state directory, or None.

    Returns:
        "lies in a kernel file system" or "is a directory of the system", or None.
    """
    if any(path == t or path.startswith(t + "/") for t in KERNEL_TREES):
        return "lies in a kernel file system"
    if path in SYSTEM_DIRS:
        return "is a directory of the system"
    return None
