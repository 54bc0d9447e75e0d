"""pyrunc: an OCI runtime with runc's command line."""
__version__ = "0.1.0"
OCI_VERSION = "1.3.0"
