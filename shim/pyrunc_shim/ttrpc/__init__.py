"""ttrpc: containerd's small RPC protocol (10-byte frame header, protobuf Request/Response)."""
