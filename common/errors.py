"""One exception type for mistakes a user can fix, so entry points can print them plainly."""


class UserError(Exception):
    """A wrong path, key, value or file content; the message says what and what to do."""
