"""User-facing errors. The CLI prints them without a traceback and exits with code 2."""


class EdgeqError(Exception):
    """A problem with the user's model, data, target or options, with the way out in the text."""


class UnsupportedOpError(EdgeqError):
    pass


class ValidationError(EdgeqError):
    """An artifact disagrees with the integer reference where it must be bit-exact."""
