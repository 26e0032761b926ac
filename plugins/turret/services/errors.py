"""The one error the services commands report to the user."""


class ServiceError(RuntimeError):
    """Something the user must fix or know about; the message says what, in one or a few lines."""
