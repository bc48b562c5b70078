"""The pure supervision core: states, policies, events and actions, and `Tree`.

Nothing under this folder imports anything outside it but the standard library's
pure modules (no os, time, threading, socket, pykka, msgpack or grpc);
`tests/core/test_core_purity.py` derives that rule from the folder itself.
The public names are re-exported by the `actors.supervisor` facade.
"""
