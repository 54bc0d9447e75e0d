"""Tracing a container's process tree (`--trace FILE`): imported only when the flag is given."""
