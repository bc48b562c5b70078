"""Kubernetes' CRI as kubelet speaks it to containerd: pods for checks, tests, benches."""
