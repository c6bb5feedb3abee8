"""The error a user's mistake raises: a flag, a file or a setting that is wrong.

`UserError` is a `ValueError`, so library callers can keep catching
`ValueError`. The console scripts print it as one line,
`<program>: error: <message>`, and exit with status 2; any other exception is a
bug and keeps its traceback. See docs/architecture.md ("Errors").
"""


class UserError(ValueError):
    """A wrong argument, flag value, file or setting, explained in one line.

    The message names what was wrong and what was received (for files: the
    file and, where there is one, the line).
    """
