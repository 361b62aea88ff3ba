"""gitsync: the sync control plane (git, plan, state, scheduler, statuses, HTTP)."""

__version__ = "0.1.0"
