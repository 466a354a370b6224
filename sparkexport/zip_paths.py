"""Which ZIP entry paths are safe: one rule for the package writer, the package reader and the
catalog's workbooks and Neuron packages (no Django import).

A safe path is relative, uses '/' only, has no empty, '.' or '..' component, no drive letter
and no control character (C0, DEL or C1), so that it extracts to the same place, inside the
target folder, on every system.
"""
import re

CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
_DRIVE = re.compile(r"[A-Za-z]:")


def entry_path_problem(path: object) -> str | None:
    """Why `path` is not a safe entry path (a directory entry may end with '/'), or None."""
    if not isinstance(path, str) or not path:
        return "it is empty"
    if CONTROL_CHARACTERS.search(path):
        return "it contains a control character"
    if "\\" in path:
        return "it contains a backslash"
    if path.startswith("/"):
        return "it is an absolute path"
    if _DRIVE.match(path):
        return "it starts with a drive letter"
    if any(part in ("", ".", "..") for part in path.removesuffix("/").split("/")):
        return "it has an empty, '.' or '..' component"
    return None
