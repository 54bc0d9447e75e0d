"""Container errors, with Docker's wording and exit codes (125: pyctr's own failure)."""
from pyctr.errors import PyctrError


class ContainerError(PyctrError):
    exit_code = 125


class CommandError(PyctrError):
    """A failure of a command other than run/create (stop, rm, logs...): Docker's exit 1."""
    exit_code = 1


class NoSuchContainer(CommandError):
    def __init__(self, ref):
        super().__init__(f"No such container: {ref}")


class NameConflict(ContainerError):
    def __init__(self, name, owner):
        super().__init__(f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
                         f'You have to remove (or rename) that container to be able to reuse that name.')


class NotFoundInImage(ContainerError):
    """The command cannot be found (127) or run (126) in the container: Docker's status codes."""

    def __init__(self, message, code):
        super().__init__(message)
        self.exit_code = code


class UnknownImage(ContainerError):
    def __init__(self, ref):
        super().__init__(f"Unable to find image '{ref}' locally (pyctr pull it first)")
