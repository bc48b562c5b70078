"""containerd's pure core: the lifecycle of `root.containerd` (events in, actions out),
its readiness and liveness decisions, the spec it runs, and the values they consume
(notify datagrams, versions, the FIFO's rules). No I/O: `tests/containerd/
test_containerd_core_purity.py` checks what importing this folder loads."""
