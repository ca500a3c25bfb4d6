"""The one exception type users see: its message is a complete one-line explanation."""


class DreamLiteError(ValueError):
    """Bad input, a missing or mismatched model, or an unsupported combination."""
