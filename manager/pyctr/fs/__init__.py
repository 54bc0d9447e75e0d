"""Filesystem work on container and volume trees through file descriptors: walking, copying,
resolving paths inside a root, private mount namespaces for temporary mounts."""
