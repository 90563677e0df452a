"""Warnings and errors users may want to filter or catch."""


class SpecWarning(UserWarning):
    """A legal spec that is probably not what you meant; the message says why and the fix."""


class RecordingFormatWarning(UserWarning):
    """A stored recording loads, but something about it differs from what was expected."""
