"""pyctr's user-facing errors: the CLI prints str(error) and exits 1, never a traceback."""


class PyctrError(Exception):
    exit_code = 1


class UsageError(PyctrError):
    exit_code = 2


class InvalidReference(PyctrError):
    def __init__(self, ref, why):
        super().__init__(f"invalid reference format {ref!r}: {why}")


class ImageNotFound(PyctrError):
    def __init__(self, ref):
        super().__init__(f"image not known: {ref}")


class DigestMismatch(PyctrError):
    def __init__(self, what, expected, actual):
        super().__init__(f"digest mismatch for {what}: expected {expected}, got {actual} "
                         f"(corrupted or tampered content; nothing was stored)")


class RegistryError(PyctrError):
    """An HTTP exchange with a registry failed; says which request and what came back."""


class AuthError(RegistryError):
    pass


class LayerError(PyctrError):
    """A layer tarball could not be applied; the message names the entry and why."""

    def __init__(self, layer, entry, why):
        super().__init__(f"layer {layer}: entry {entry!r}: {why}; the partial layer was removed")
        self.entry = entry
