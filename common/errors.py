"""User-facing errors: one message that names the key, file or site and says how to fix it."""


class UserError(Exception):
    """A mistake in the user's input (config, paths, data). Printed without a traceback."""
