"""gVisor's runsc as a CRI runtime: the launcher containerd's runc v2 shim runs."""
