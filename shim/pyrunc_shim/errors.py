"""Errors a Task method answers with: a ttrpc status code containerd maps to its errdefs."""
from pyrunc_shim.ttrpc.framing import TtrpcError as ShimError  # noqa: F401
from pyrunc_shim.ttrpc import framing


def not_found(what):
    return ShimError(framing.NOT_FOUND, f"{what}: not found")


def failed_precondition(msg):
    return ShimError(framing.FAILED_PRECONDITION, msg)


def already_exists(what):
    return ShimError(framing.ALREADY_EXISTS, f"{what}: already exists")


def invalid(msg):
    return ShimError(framing.INVALID_ARGUMENT, msg)
