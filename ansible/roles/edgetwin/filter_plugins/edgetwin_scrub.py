"""edgetwin_scrub: the readiness check's scrub (files/edgetwin-ready), for the role's failure message.

One implementation: the function is taken from the file the role installs on the gateway, so what the check prints
and what the rollback message repeats are masked by the same rules. Compiled from source here (not imported), so no
bytecode cache is written into the role's files/.
"""
import os

_READY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "files", "edgetwin-ready")
_NAMESPACE = {"__name__": "edgetwin_ready"}
with open(_READY, encoding="utf-8") as _source:
    exec(compile(_source.read(), _READY, "exec"), _NAMESPACE)  # pylint: disable=exec-used


class FilterModule:
    """Ansible filter plugin entry point."""

    def filters(self):
        return {"edgetwin_scrub": _NAMESPACE["scrub"]}
