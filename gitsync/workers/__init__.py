"""The Celery executor: runnable tasks sent to `gitsync worker` processes over Redis (`executor: celery`).

Imported only when the configuration says `executor: celery` (or by `gitsync worker`/`gitsync workers`): a
daemon on the local executor never imports Celery.
"""
