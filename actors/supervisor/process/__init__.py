"""The child side: what runs inside a runnable's own process.

`host` is the entry point the root spawns (`python -m` `protocol.HOST_MODULE`);
`zygote` is the preloaded process that forks hosts instead when the root has one;
`link` speaks msgpack frames to the root; `api` is what a runnable calls
(`Context`: signal, run_group, loggers); `childlog` carries its logs to the root.
`protocol` holds the little the root and a child agree on (the link fd, exit
codes); it is the only module here that the root side imports.
"""
