"""Every client of containerd's API: the gRPC client of its services (`client`), the one
Version probe (`version`), the CRI client (`cri`) and their one error (`errors`)."""
