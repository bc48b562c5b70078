"""One archive into containerd (Go's `client.Import`): the plan, the blob writer, leases,
unpacking, options and results; `archive_import.import_archive` is the entry."""
