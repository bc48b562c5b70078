"""The control socket: a gRPC service on a unix socket, and the commands that use it.

- `server`: `ControlServer`, run by the agent's root process (mode 0600 socket,
  never taking over a live one).
- `client`: the `status`, `logs` and `restart` commands, and how they find
  the agent.
- `plain` (client, standard library only) and `plain_server`: one JSON request and
  one answer per connection on `<socket>.plain`, so `status`, `logs -n`, `restart`
  and `import` need not import grpc.
- `probe`: who listens on a socket path (standard library only).
- `wire`: what both sides share: the messages' dict forms and the exit codes.

Importing this package loads neither side; import the module you need.
"""
