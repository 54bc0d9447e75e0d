"""linux.seccomp: build the filter early (errors surface before anything is changed), load it late.

One entry point for init and for exec: `prepare(seccomp_config)` returns a Prepared filter whose
`load()` installs it on the calling thread and returns the notify listener fd (or None).
"""
from pyrunc.errors import InvalidSpec, StepError


class Prepared:
    def __init__(self, plan, filt):
        self.plan, self.filter = plan, filt

    @property
    def uses_notify(self):
        return self.plan.uses_notify

    def load(self):
        """Install the filter; returns the SECCOMP_RET_USER_NOTIF listener fd when the filter notifies."""
        try:
            self.filter.load()
            fd = self.filter.notify_fd() if self.plan.uses_notify else None
        except OSError as e:
            raise StepError("load seccomp filter", None, e) from None
        finally:
            self.filter.release()
        return fd


def prepare(seccomp):
    from pyrunc.linux.seccomp.compile import SeccompConfigError, compile_plan
    from pyrunc.sys import libseccomp
    try:
        plan = compile_plan(seccomp)
    except SeccompConfigError as e:
        raise InvalidSpec(f"linux.seccomp.{e.where}", str(e).split(": ", 1)[1]) from None
    try:
        filt = libseccomp.Filter(plan.default_action)
    except OSError as e:
        raise StepError("create seccomp filter", None, e) from None
    try:
        for arch in plan.arches:
            try:
                filt.arch_add(arch)
            except OSError as e:
                raise StepError("seccomp architecture", arch, e) from None
        for attr, value, flag in plan.attrs:
            try:
                filt.attr_set(attr, value, flag)
            except OSError as e:
                what = f"flag {flag}" if flag else "no_new_privs attribute"
                raise StepError(f"seccomp {what}", None,
                                f"not supported by libseccomp {'.'.join(map(str, libseccomp.version()))}"
                                f" ({e.strerror.lower()})") from None
        for action, name, conditions, where in plan.rules:
            nr = libseccomp.resolve_syscall(name)
            if nr is None:
                continue  # a syscall this libseccomp does not know: skipped, as runc does
            try:
                filt.rule_add(action, nr, conditions, name)
            except OSError as e:
                raise StepError(f"linux.seccomp.{where}: add rule for", name, e) from None
    except BaseException:
        filt.release()
        raise
    return Prepared(plan, filt)
