"""The ferlens Streamlit dashboard: the frame (``app.py``), the sidebar, cached resources and testable helpers.

Pages are thin: they read the sidebar's settings, call one helper here and render. Nothing heavy is imported at
module level.
"""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGES_DIR = REPO_ROOT / "pages"

PYTHON = ".venv/bin/python"
"""The interpreter in the commands the pages print (as in the README): the repo's own virtualenv, from its root."""


def display_ref(ref: str | Path) -> str:
    """A file reference as menus show it: the path relative to the repo, or as given (uploads, other folders)."""
    try:
        return str(Path(ref).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(ref)


def runnable(command) -> str | None:
    """A recorded ``python -m ...`` command as it runs from the repo root (with :data:`PYTHON`); a sidecar field
    that is not text is no command."""
    if not isinstance(command, str):
        return None
    if command.startswith("python "):
        return PYTHON + command[len("python") :]
    return command
