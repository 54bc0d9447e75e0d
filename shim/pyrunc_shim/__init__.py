"""pyrunc-shim: supervises one container (and its execs) for its whole life, speaking containerd's
shim v2 Task API over ttrpc. Imports no pyrunc module: the runtime is driven through its command
line only, so any runc-compatible binary can sit under it."""
__version__ = "0.1.0"
