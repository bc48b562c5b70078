"""Reading image tarballs: OCI layouts and `docker save` archives, their index,
descriptors, platforms and image names, verified without containerd."""
