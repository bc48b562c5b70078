"""The control socket: a gRPC service on a unix socket, and the commands that use it.

- `server`: `ControlServer`, run by the agent's root process (mode 0600 socket,
  never taking over a live one).
- `client`: the `status`, `logs` and `restart` commands, and how they find
  the agent.
- `wire`: what both sides share: the messages' dict forms and the exit codes.

Importing this package loads neither side; import the module you need.
"""
