"""The containerd service: the daemon, the runsc log pump, and their plumbing.

Runnables (import paths for the supervision tree):

* ``actors.containerd.process:run`` — ``root.containerd``: creates and holds the
  runsc FIFO, starts the children ``runsc`` and ``preseed``, runs containerd,
  HEALTHY once containerd is ready (`process`).
* ``actors.containerd.logpump:run`` — ``root.containerd.runsc``: pumps the FIFO
  into the node's raw log (`logpump`).
* ``actors.containerd.children:preseed_disabled`` — ``root.containerd.preseed`` when
  preseeding is disabled.

Modules, one concept each: `process` (the actor deciding about containerd), `daemon`
(the containerd OS process: spawn, output, signals, exit), `children` (the pump and
preseed children), `fifo` (the named pipe), `notify` (the sd_notify socket),
`readiness` (when containerd counts as ready), `stale` (sockets left by a killed
containerd), `spec` (arguments, command line, environment), `wakeup` (interrupting a
poll), `node` (what the actors need from their supervision node).

Nothing is imported here, so that the pure modules load without the runtime.
"""

from __future__ import annotations
