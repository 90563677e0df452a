"""Warnings and errors users may want to filter or catch."""


class SpecWarning(UserWarning):
    """A legal spec that is probably not what you meant; the message says why and the fix."""


class RecordingFormatWarning(UserWarning):
    """A stored recording loads, but something about it differs from what was expected."""


class LimitError(ValueError):
    """A request beyond what the machine or the format can do; the message gives the
    numbers and the fix (e.g. split into sessions, lower the density)."""


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the user's line.

    Counted from the function that calls ``warnings.warn``: frames inside minisim and
    pydantic (a spec's validators run under ``Spec(...)`` or ``Spec.model_validate_json``)
    are skipped, whatever the path that led to the warning.
    """
    import sys
    from pathlib import Path

    import pydantic

    internal = (str(Path(__file__).parent), str(Path(pydantic.__file__).parent))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(internal):
        frame, level = frame.f_back, level + 1
    return level
