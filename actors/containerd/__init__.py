"""The containerd service: the daemon, the runsc log pump, and their plumbing.

Runnables (import paths for the supervision tree):

* `actors.containerd.process:run` — `root.containerd`: creates and holds the
  runsc FIFO, starts the children `runsc` and `preseed`, runs containerd,
  HEALTHY once containerd is ready, failed when it stops answering (`process`).
* `actors.containerd.logpump:run` — `root.containerd.runsc`: pumps the FIFO
  into the node's raw log (`logpump`).
* `actors.containerd.children:preseed_disabled` — `root.containerd.preseed` when
  preseeding is disabled.

Modules, one concept each: `lifecycle` (the pure state machine deciding about one
run of containerd) and `events` (its events, actions and outcome), `process` (the
actor: the lifecycle's I/O shell), `daemon` (the containerd OS process: spawn,
output, signals, exit), `children` (the pump and preseed children), `fifo` (the
named pipe), `notify` (the sd_notify socket), `readiness` (when containerd counts as
ready), `version` (the one Version probe: is containerd answering), `stale` (sockets
left by a killed containerd), `spec` (arguments, command line, environment),
`wakeup` (interrupting a poll), `node` (what the actors need from their supervision
node).

Nothing is imported here, so that the pure modules load without the runtime.
"""

from __future__ import annotations
