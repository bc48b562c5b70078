"""Test support shipped with the supervisor, like `trio.testing`.

- `simulation`: `Simulation`, the pure core driven to exact quiescence under a
  fake clock, with fake processes (`FakeProcess`) standing in for runnables.
- `fakes`: the scripted behaviours those fake processes play (becomes-healthy,
  spawns-more, remote-controlled).
- `kit`: real runnables for process-level tests and benchmarks, started by the
  real runtime in their own processes.
- `harness`: a real `Supervisor` under test, with fast policies and its state
  changes recorded, and a root starting the kit's runnables as one group.
"""
