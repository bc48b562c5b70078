"""The agent's preseed, `root.containerd.preseed`: the runnable, its `PreseedActor`, the
file-by-file `Preseeder` with its import record and pins, the directory walk, and the
inotify watch of the directory."""
