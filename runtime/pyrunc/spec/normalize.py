"""A parsed config.json (or process.json) as runc reads it, before the schema sees it.

Two things happen here, each only when the document's text shows it can be needed (a valid config
from containerd, podman or Docker costs three substring searches):

- `"key": null` is dropped. Go's decoder leaves a field untouched for a JSON null, so to runc a null
  member is an absent one; callers send them (an unset pointer or slice marshals as null), and
  the schema would refuse them as "None is not of type 'object'".
- strings the kernel cannot take are refused, with their JSON path: a NUL byte (every string ends
  up as a C string, where the NUL would silently cut it: a masked path "/proc/kc\\0ore" would mask
  "/proc/kc") and a lone UTF-16 surrogate (a "\\udc80" escape: not Unicode, cannot be encoded for
  any system call or file). Subtrees named in `exempt` (annotations, which only ever go back out
  as JSON) are only cleared of nulls.
"""
from pyrunc.errors import InvalidSpec


def prepare(document, source: str, raw: bytes | None = None, exempt=()) -> None:
    """Drop null members in place and refuse unusable strings; `raw` is the document's text (None:
    assume anything can be there)."""
    nulls = raw is None or b"null" in raw
    strings = raw is None or b"\\u0000" in raw or b"\\ud" in raw or b"\\uD" in raw
    if not (nulls or strings):
        return
    # An explicit stack: a document may nest as deeply as the parser allowed.
    stack = [(document, (), False)]
    while stack:
        value, path, exempted = stack.pop()
        if isinstance(value, dict):
            if nulls:
                for key in [k for k, v in value.items() if v is None]:
                    del value[key]
            for key, item in value.items():
                where = path + (key,)
                here = exempted or (not path and key in exempt)
                if strings and not here:
                    _check_string(key, where, source)
                if isinstance(item, (dict, list)):
                    stack.append((item, where, here))
                elif strings and not here and isinstance(item, str):
                    _check_string(item, where, source)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, (dict, list)):
                    stack.append((item, path + (index,), exempted))
                elif strings and not exempted and isinstance(item, str):
                    _check_string(item, path + (index,), source)
        elif strings and isinstance(value, str) and not exempted:
            _check_string(value, path, source)


def _check_string(text: str, path, source: str) -> None:
    if "\0" in text:
        raise InvalidSpec(_where(path), "contains a NUL byte, which no system call can take", source)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as e:
            raise InvalidSpec(_where(path), f"contains U+{ord(text[e.start]):04X}, a lone UTF-16 "
                              "surrogate, which is not Unicode", source) from None


def _where(path) -> str:
    from pyrunc.spec.validate import json_path
    return json_path(list(path))
