"""The agent under systemd: the notify protocol's socket (`sdnotify`), READY/STATUS as a
pure function of the tree's state changes (`service_state`), and the thread that
sends them and feeds the watchdog (`notifier`)."""
