"""Everything that crosses a process boundary.

* `messages.wire`, `messages.framing`, `messages.session`: the msgpack protocol
  between the root and each runnable's process.
* `messages.containerd`: protobuf/gRPC modules for containerd's API.
* `messages.control`: protobuf/gRPC modules for the agent's control socket.
"""
