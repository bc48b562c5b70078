"""What containerd runs pods with: the pod runtime handlers (`handlers`), the binary's
version (`binary`), the generated config file (`config_file`), the sandbox image
(`sandbox_image`) and gVisor's runsc (`runsc/`: the launcher, its state, its ACLs)."""
