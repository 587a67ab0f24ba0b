"""Reading a code-set file given on the command line into text."""

from pathlib import Path

from django.core.management.base import CommandError


def read_text(path: Path) -> str:
    """The file's text: UTF-8, or Windows-1252 as CMS and spreadsheet exports use."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CommandError(f"Cannot read {path}: {error.strerror}.") from error
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def refuse(label: str, path: Path, problems) -> CommandError:
    return CommandError(
        f"{path.name} has problems; nothing was loaded.\n"
        + "\n".join(f"{label} {problem}" for problem in problems)
    )
