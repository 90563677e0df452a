"""Warnings and errors users may want to filter or catch."""


class SpecWarning(UserWarning):
    """A legal spec that is probably not what you meant; the message says why and the fix."""


class RecordingFormatWarning(UserWarning):
    """A stored recording loads, but something about it differs from what was expected."""


class LimitError(ValueError):
    """A request beyond what the machine or the format can do; the message gives the
    numbers and the fix (e.g. split into sessions, lower the density)."""
