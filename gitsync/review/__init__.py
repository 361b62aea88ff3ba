"""`gitsync review`: the review of one pull request in CI, without a daemon.

`ci` reads what to review and where to post it from the CI's own environment (GitHub Actions, GitLab CI,
Gitea/Forgejo Actions) and the command's flags; `commits` makes sure the base and head commits, and the history the
plan reads, are there (a shallow clone's missing part is fetched with dulwich); `report` turns the plan's problems
into the CI's annotations; `run` validates and plans with the code a sync uses (`gitsync.sync.compute`) and posts
the `gitsync/plan` status and the one plan comment through `gitsync.hosts`, as the daemon's pull-request planner
does (`gitsync.sync.pull_requests`), so the two share one comment.
"""
