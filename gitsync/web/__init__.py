"""The web UI: server-rendered pages over `gitsync.views`, served by the daemon's Starlette app (see `routes`).

The pure pieces (`graph`, `svg`, `timeline`, `highlight`, `diff`) do no I/O; Jinja2 and Pygments are imported
when the first page is rendered, never by an idle daemon.
"""
