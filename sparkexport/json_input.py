"""The one JSON parser for everything the API reads: request bodies, the import entity (field or
part), a package's manifest.json and version.json.

Bounded and unambiguous: nesting deeper than MAX_DEPTH is refused (also where Python's own
recursion limit would have failed first, with a RecursionError), and so is an object with the
same key twice, whose meaning JSON leaves open (RFC 8259 §4: parsers differ on which one wins).
NaN and Infinity, which are not JSON, are refused too. Standard library only: the package
reader, which imports no Django, uses it.
"""
import json

# The deepest document the API reads legitimately is the import entity, 4 levels deep.
MAX_DEPTH = 32


class JSONInputError(ValueError):
    """The text is not JSON the API accepts; str(e) says why, to follow "<what> is ..."."""


class DuplicateKey(JSONInputError):
    def __init__(self, key: str):
        super().__init__(f"ambiguous: duplicate key {key[:100]!r} in one object")
        self.key = key


def parse_json(text: str | bytes, *, max_depth: int = MAX_DEPTH):
    """The value of `text`, or JSONInputError."""
    try:
        value = json.loads(text, object_pairs_hook=_unique_keys, parse_constant=_refuse_constant)
    except RecursionError:
        raise _too_deep(max_depth) from None
    except JSONInputError:
        raise
    except ValueError as exc:  # JSONDecodeError, or bytes in no UTF encoding
        raise JSONInputError(f"not valid JSON: {exc}") from None
    if _depth_exceeds(value, max_depth):
        raise _too_deep(max_depth)
    return value


def _too_deep(max_depth: int) -> JSONInputError:
    return JSONInputError(f"nested too deeply (at most {max_depth} levels of arrays and objects)")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict:
    value = {}
    for key, item in pairs:
        if key in value:
            raise DuplicateKey(key)
        value[key] = item
    return value


def _refuse_constant(name: str):
    raise JSONInputError(f"not valid JSON: {name} is not a JSON number")


def _depth_exceeds(value, max_depth: int) -> bool:
    """Whether containers nest deeper than `max_depth`; iterative, so any depth is safe to walk."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > max_depth:
            return True
        pending.extend((child, depth + 1) for child in children)
    return False
