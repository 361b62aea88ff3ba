"""The root of the exception tree, here in the innermost package so that every package's errors share it.

The whole tree, with what each branch means to a user, is drawn in `gitsync/errors.py`.
"""

from __future__ import annotations


class GitSyncError(Exception):
    """Base of every error a user can see: its message is what they read, so it names the file, flow, task or
    setting at fault and why (never a secret). The command line prints it without a traceback."""


class ExpressionError(GitSyncError, ValueError):
    """A `{{ }}` expression could not be parsed or evaluated (a filter, function, date or jq program refused)."""
