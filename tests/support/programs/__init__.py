"""Programs the system tests run in child processes, each a module of the checkout.

Run one as `python -m tests.support.programs.<name>` with the checkout on `PYTHONPATH`
(`tests.support.project.python_module` and `python_env`); `parse_child` is a runnable
(`tests.support.programs.parse_child:write`), which a supervisor's child process imports
the same way.

Modules:
    containerd_child: `run_containerd` alone in a process, for the parent-death test.
    pump_child: the runsc log pump alone in a process, for the SIGKILL loss-bound test.
    fifo_writer: a runsc stand-in writing numbered lines into a FIFO.
    parse_child: a runnable writing given chunks to its raw log.
    root_main: a root process running a `Supervisor` on a spec given as JSON.
"""
