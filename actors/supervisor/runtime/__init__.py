"""The root side of the supervision tree: the shell that feeds the pure core.

`actor.SupervisorActor` (pykka) owns the `Tree`, turns what happens to child
processes into events and carries out the actions the core returns; `child`
holds one runnable's process and its link, `spawn` starts it fresh and `zygote`
has it forked from a preloaded process instead, `timers` fires the
core's timers, and `clock` is where the root reads time.
"""
