"""A root process for tests: runs a Supervisor on a spec given as JSON in argv[1].

With `"spawn": "zygote"` in the JSON, hosts are forked from a zygote that preloads
the supervision kit, started before the tree. Prints "ready" once started and then waits until SIGTERM; exits with 1 and the
failure on stderr if the tree failed.
"""

from __future__ import annotations

import json
import signal
import sys

from actors.supervisor.core.events import RunnableSpec
from actors.supervisor.core.policy import PolicyRule, PolicySet
from actors.supervisor.runtime.actor import Supervisor
from actors.supervisor.runtime.switching import use_fast_switching
from actors.supervisor.runtime.zygote import Zygote
from actors.supervisor.testing.harness import KIT


def main() -> int:
    use_fast_switching()
    spec = json.loads(sys.argv[1])
    rules = [PolicyRule(p, o) for p, o in spec.get("rules", {}).items()]
    zygote = None
    if spec.get("spawn") == "zygote":
        zygote = Zygote([KIT.rstrip(":")])
        zygote.start()
    sup = Supervisor(
        RunnableSpec(target=spec["target"], args=spec["args"]),
        policies=PolicySet(rules=rules),
        zygote=zygote,
    )
    signal.signal(signal.SIGTERM, lambda *_: sup.shutdown("SIGTERM"))
    sup.start()
    print("ready", flush=True)
    while not sup.wait(0.2):
        pass
    failure = sup.stop()
    if zygote is not None:
        zygote.close()
    if failure:
        print(f"failed: {failure}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
