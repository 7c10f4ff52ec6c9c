"""The one exception type users see: a single line naming the file and the fix."""


class SimdataError(Exception):
    """A user-facing error. The CLI prints ``simdata: error: <message>`` and exits with 2.

    Messages name the offending file or option and say how to fix it, on one line.
    """
