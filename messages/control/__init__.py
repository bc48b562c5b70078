"""Protobuf and gRPC modules of the agent's control socket (generated from control.proto)."""
