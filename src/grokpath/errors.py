"""One exception type for bad input, so entry points can print a single line and exit."""


class GrokpathError(Exception):
    """Bad input: the message names the file or config key and what was expected."""
