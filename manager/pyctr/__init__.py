"""pyctr: a daemonless Docker-like manager (images today; containers next)."""
__version__ = "0.1.0"
