"""User-facing errors. The CLI prints them without a traceback and exits with code 2."""


class EdgeqError(Exception):
    """A problem with the user's model, data, target or options, with the way out in the text."""


class UnsupportedOpError(EdgeqError):
    pass


class ValidationError(EdgeqError):
    """An artifact disagrees with the integer reference where it must be bit-exact."""


class UnsafeModelError(EdgeqError):
    """A model file asks for something edgeq will not run without ``trust_model`` (a pickled
    object outside the allowlist, compiled code, an unvetted callable)."""


class EdgeqNote(UserWarning):
    """Something the user should know that does not stop the build (an option that does not
    apply, data taken in once). The CLI prints each as one ``edgeq: note:`` line."""
