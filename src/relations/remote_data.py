"""What every relation module raises when the other side wrote data the charm cannot use."""


class RemoteDataError(Exception):
    """A related application's data is unusable; the message names the value and why."""
