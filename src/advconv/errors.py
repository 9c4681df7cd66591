"""What a user is told: the errors they can fix (the CLI prints any of them as one line and
exits 2; anything else is a bug in advconv and shows its traceback), and warnings."""


class AdvconvError(Exception):
    """Base of every error whose message tells the user what to change."""


class ConfigError(AdvconvError, ValueError):
    """A config, an override or a model description names an unknown field or an impossible value."""


class DataError(AdvconvError, RuntimeError):
    """The dataset cannot be found, read or decoded; the message says what to do."""


class CheckpointError(AdvconvError, RuntimeError):
    """A checkpoint or weights file cannot be read or written; the message names the file."""


class TrainingDiverged(AdvconvError, RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left in place."""


_told: set[str] = set()


def warn(message: str) -> None:
    """Tell the user something once, as one ``warning:`` line on stderr (no Python warning
    machinery: no file and line echoed, no repeats)."""
    _tell("warning", message)


def note(message: str) -> None:
    """Tell the user a fact they should know, once, as one ``note:`` line on stderr."""
    _tell("note", message)


def _tell(kind: str, message: str) -> None:
    import sys

    if message not in _told:
        _told.add(message)
        print(f"{kind}: {message}", file=sys.stderr, flush=True)
