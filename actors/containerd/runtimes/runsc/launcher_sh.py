"""The runsc launcher as a POSIX shell script: what containerd's runc v2 shim runs as its runc.

Debian ships no `containerd-shim-runsc-v1`, so the `runsc` CRI handler is the
runc v2 shim (`io.containerd.runc.v2`) with this launcher as its `BinaryName`. The
shim runs it several times per container (create, start, state, kill, delete,
exec); a Python start per call cost about 25 ms each, so the launcher is `sh`
(about 1 ms) and every command ends in an `exec` of runsc, or in a few runsc calls
of its own. `launcher.render_launcher` fills in the values (`@RUNSC@`: runsc and
the configured flags, shell-quoted; `@TMPDIR@`, `@HOSTNET@`, `@PYTHON@`, `@HELPER@`).

What it does, and nothing else (`launcher_main`, the Python helper, does the same
for `create` when the spec is not the compact JSON containerd writes):

* Runs runsc with the configured flags in front of the shim's own, and with
  `TMPDIR` set to the directory gVisor's sandbox can reach.
* `create` reads the bundle's `config.json` by pattern (containerd writes it as
  compact JSON starting `{"ociVersion":"`; anything else goes to the helper):
  - a host-network pod (namespaces listed, none of type `network`) gets
    `--network=host` (`@HOSTNET@`; empty when the configured flags choose a
    network), recorded as `<root>/<id>.hostnet` for `start`, where runsc sets the
    network up;
  - a pod's sandbox with a log directory (annotation
    `io.kubernetes.cri.sandbox-log-directory`, absolute) gets gVisor's user log
    `<dir>/gvisor.log` (`create --user-log`) and its panic log
    `<dir>/gvisor_panic.log` (the sandbox's and gofer's `--panic-log`), as
    gVisor's own shim does; nothing without one;
  - a container that joins a sandbox (annotation `io.kubernetes.cri.container-type`
    = `container`) gets a waiter: runsc reports the sandbox's pid for every
    container of a pod, so the waiter's pid goes into the shim's pid file. It keeps
    the container's stdio from `create` as its fds 3-5 (recorded as
    `<root>/<id>.waiter`: runsc hands a joining container the stdio of `start`),
    waits until the container has started — the launcher's `start` leaves
    `<root>/<id>.started`; runsc is asked only once a second without one, or at
    once when the waiter's record is gone (giving up after three `runsc state`
    failures in a row: the container is gone) —
    then `runsc wait`s and exits with the container's status, which the shim (a
    child subreaper) reaps.
* `start` of a joining container runs with the waiter's fds, reopened through
  `/proc/<waiter>/fd` (and fails when the waiter is gone: with the shim's stdio,
  the container would hold `start`'s output open and the shim would hang); of a
  host-network sandbox, with `--network=host`.
* `kill` that runsc refuses: a container still `created` (runsc cannot signal
  one; its `start` failed) is deleted by force, as runc kills one, so its sandbox
  and gofer end and the pod can be removed; its rootfs is then detached (`umount
  -l`), as a newer runsc's sandbox keeps the container's overlay filestore there
  open, and the shim could never unmount it, nor delete the task, nor CRI the pod.
  runsc's "... is not running" is said as runc says it (`container not running`),
  the one wording the shim accepts; such a container is not `created`, and runsc
  is not asked its state.
* `exec --detach` (the shim's exec and ExecSync) also writes the process's pid in
  the sandbox (`--internal-pid-file`), and leaves the helper watching the
  host-side `runsc exec`: when that ends by a signal (the shim kills it at an ExecSync timeout), the
  process in the sandbox is killed too; it would keep running otherwise, holding
  the exec's output open, and ExecSync would return only at the client's deadline.
  After a normal end the process is gone: no runsc call.
* `delete` removes the records (one `rm`).

Per pod (a sandbox and one container), `bench/pods_calls` counts what the
launcher runs: no `runsc state` on the success path.
"""

from __future__ import annotations

__all__ = ["TEMPLATE"]

TEMPLATE = r"""#!/bin/sh
# Written by node-containerd at every start: the runsc launcher that containerd's
# runc v2 shim runs as its runc. Edit the agent's [runsc] config instead.
TMPDIR=@TMPDIR@
export TMPDIR
hostnet=@HOSTNET@
python=@PYTHON@
helper=@HELPER@

# One pass over runc-style arguments as go-runc passes them: global flags, the
# command (at position $at), its flags and arguments.
root= log= cmd= at=0 i=0 want= bundle= pidfile= detach= last= prev=
for arg; do
    i=$((i + 1)) prev=$last last=$arg
    if [ -n "$want" ]; then
        case $want in
        --root) root=$arg ;;
        --log) log=$arg ;;
        --bundle | -b) bundle=$arg ;;
        --pid-file) pidfile=$arg ;;
        esac
        want=
    elif [ -z "$cmd" ]; then
        case $arg in
        --root | --log | --log-format | --criu) want=$arg ;;
        --root=*) root=${arg#*=} ;;
        --log=*) log=${arg#*=} ;;
        -*) ;;
        *) cmd=$arg at=$i ;;
        esac
    else
        case $arg in
        --bundle | -b | --pid-file) want=$arg ;;
        --bundle=*) bundle=${arg#*=} ;;
        --pid-file=*) pidfile=${arg#*=} ;;
        --detach | -d) detach=1 ;;
        esac
    fi
done
id=$last
[ "$cmd" = kill ] && id=$prev

case $cmd in
create)
    # By `cat`, not the shell's `read`: dash reads a byte per system call (a sandbox's
    # spec, some 10 KiB, cost several ms more than a `cat`).
    spec=$(cat "${bundle:-.}/config.json" 2>/dev/null) || spec=
    case $spec in
    '{"ociVersion":"'*) ;;
    *) exec "$python" -IS "$helper" "$@" ;;
    esac
    net= panic= userlog= joins=
    case $spec in
    *'"type":"network"'*) ;;
    *'"namespaces":['*) net=$hostnet ;;
    esac
    case $spec in
    *'"io.kubernetes.cri.container-type":"container"'*) [ -n "$pidfile" ] && joins=1 ;;
    *'"io.kubernetes.cri.sandbox-log-directory":"/'*)
        dir=${spec#*'"io.kubernetes.cri.sandbox-log-directory":"'}
        dir=${dir%%'"'*}
        case $dir in *\\*) exec "$python" -IS "$helper" "$@" ;; esac
        [ -d "$dir" ] || mkdir -p "$dir" || exit
        panic=--panic-log=$dir/gvisor_panic.log userlog=--user-log=$dir/gvisor.log
        ;;
    esac
    if [ -n "$net" ] && [ -n "$root" ]; then
        [ -d "$root" ] || mkdir -p -m 0711 "$root" || exit
        printf '%s' "$net" >"$root/$id.hostnet" || exit
    fi
    # The same arguments, with gVisor's user log after `create` and, for a joining
    # container, without the pid file (its waiter's pid goes there instead).
    n=$# i=0 want=
    for arg; do
        i=$((i + 1))
        if [ -n "$want" ]; then
            want=
        elif [ -n "$joins" ] && [ "$arg" = --pid-file ]; then
            want=1
        elif [ -n "$joins" ] && [ "${arg#--pid-file=}" != "$arg" ]; then
            :
        else
            set -- "$@" "$arg"
            [ "$i" = "$at" ] && [ -n "$userlog" ] && set -- "$@" "$userlog"
        fi
    done
    shift "$n"
    [ -n "$joins" ] || exec @RUNSC@ ${net:+"$net"} ${panic:+"$panic"} "$@"
    @RUNSC@ ${net:+"$net"} "$@" || exit
    # The waiter, holding the container's stdio as fds 3-5 from its fork on: `start`
    # reopens them as soon as the launcher has exited, maybe before the waiter has
    # run a line. (A background job's stdin is /dev/null; fd 3 is not.)
    exec 3<&0 4>&1 5>&2
    (
        exec </dev/null >/dev/null 2>&1
        n=$# i=0
        for arg; do
            i=$((i + 1))
            [ "$i" -lt "$at" ] && set -- "$@" "$arg"
        done
        shift "$n"
        # Started: the launcher's `start` leaves <root>/<id>.started. runsc is asked
        # without a root, once a second, after a failed ask, and once its record
        # <root>/<id>.waiter is gone (a forced delete or `delete` removes it).
        failed=0 polls=0
        while [ "$failed" -lt 3 ]; do
            [ -n "$root" ] && [ -e "$root/$id.started" ] && break
            polls=$((polls + 1))
            if [ -z "$root" ] || [ "$failed" -gt 0 ] || [ "$((polls % 20))" = 0 ] ||
                { [ "$polls" -gt 1 ] && [ ! -e "$root/$id.waiter" ]; }; then
                if ! state=$(@RUNSC@ "$@" state "$id" 3<&- 4>&- 5>&-); then
                    failed=$((failed + 1)) && sleep 0.05 && continue
                fi
                case $state in
                *'"status": "created"'* | *'"status":"created"'*) failed=0 ;;
                *) break ;;
                esac
            fi
            sleep 0.05
        done
        [ "$failed" -lt 3 ] || exit 255
        status=$(@RUNSC@ "$@" wait "$id" 3<&- 4>&- 5>&-)
        status=${status#*'"exitStatus":'}
        status=${status%%[!0-9]*}
        exit $((${status:-255} & 255))
    ) &
    waiter=$!
    exec 3<&- 4>&- 5>&-
    printf '%s' "$waiter" >"$pidfile" || exit
    [ -z "$root" ] || printf '%s' "$waiter" >"$root/$id.waiter"
    exit
    ;;
start)
    net=
    [ -n "$root" ] && [ -f "$root/$id.hostnet" ] && net=--network=host
    waiter=
    [ -n "$root" ] && [ -f "$root/$id.waiter" ] && { read -r waiter || :; } <"$root/$id.waiter"
    if [ -n "$waiter" ] && [ -e "/proc/$waiter/fd/5" ]; then
        @RUNSC@ ${net:+"$net"} "$@" \
            <"/proc/$waiter/fd/3" >"/proc/$waiter/fd/4" 2>"/proc/$waiter/fd/5" || exit
        : >"$root/$id.started"
        exit 0
    elif [ -n "$waiter" ]; then
        # Without its stdio the container would hold start's output open: a hang.
        echo "runsc launcher: the waiter of container $id (pid $waiter) is gone" >&2
        exit 1
    fi
    exec @RUNSC@ ${net:+"$net"} "$@"
    ;;
kill)
    exec 3>&1
    err=$(@RUNSC@ "$@" 2>&1 >&3 3>&-)
    code=$?
    [ "$code" = 0 ] && exit 0
    case $err in
    *"not running"*) echo "container not running" >&2 && exit "$code" ;;
    esac
    n=$# i=0
    for arg; do
        i=$((i + 1))
        [ "$i" -lt "$at" ] && set -- "$@" "$arg"
    done
    shift "$n"
    state=$(@RUNSC@ "$@" state "$id" 2>/dev/null 3>&-)
    case $state in
    *'"status": "created"'* | *'"status":"created"'*)
        @RUNSC@ "$@" delete --force "$id" 3>&- || exit
        # Its waiter, told so, finds it gone at once rather than at its next ask.
        [ -z "$root" ] || [ ! -e "$root/$id.waiter" ] || rm -f "$root/$id.waiter"
        # A newer runsc's sandbox (overlay2 root:self) keeps the failed container's
        # filestore open in its rootfs: the shim's unmount would fail for ever.
        # Detached now, the mount goes when the sandbox does. (The shim's runc log
        # is <bundle>/log.json, the rootfs <bundle>/rootfs.)
        [ -z "$log" ] || umount -l "${log%/*}/rootfs" 2>/dev/null
        exit 0
        ;;
    esac
    printf '%s\n' "$err" >&2
    exit "$code"
    ;;
exec)
    [ -n "$detach" ] && [ -n "$pidfile" ] || exec @RUNSC@ "$@"
    n=$# i=0
    for arg; do
        i=$((i + 1))
        set -- "$@" "$arg"
        [ "$i" = "$at" ] && set -- "$@" "--internal-pid-file=$pidfile.inner"
    done
    shift "$n"
    @RUNSC@ "$@" || exit
    # Started after runsc exec, not beside it: a Python start on the exec's way costs
    # it about 30 ms on a busy machine.
    "$python" -IS "$helper" --watch-exec "$@" </dev/null >/dev/null 2>&1 &
    exit 0
    ;;
delete)
    if [ -n "$root" ]; then
        # One rm for them all, when there is one.
        for record in waiter hostnet started; do
            [ ! -e "$root/$id.$record" ] || break
            record=
        done
        [ -z "$record" ] || rm -f "$root/$id.waiter" "$root/$id.hostnet" "$root/$id.started"
    fi
    ;;
esac
exec @RUNSC@ "$@"
"""
