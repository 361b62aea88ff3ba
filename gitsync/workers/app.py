"""The Celery app both sides build from the same settings: JSON messages only (never pickle), late
acknowledgement with redelivery of a lost worker's message, one message reserved per free thread.

gitsync keeps no Celery results (`task_ignore_result`): a task's result, logs and files go through gitsync's
own keys (`keys`), written once (`claims`), so the control plane reads them without a result backend's polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from celery import Celery

from gitsync.workers import transport
from gitsync.workers.settings import CeleryConfig

TASK_NAME = "gitsync.run_task"


def build_app(config: CeleryConfig, broker_url: str, run: Callable[[dict[str, Any]], None] | None = None) -> Celery:
    """The app; `run` (a worker's) is what the task does with the message's payload."""
    app = Celery("gitsync", broker=transport.broker_url(broker_url), set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": config.visibility_timeout},
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        task_default_queue=config.default_queue,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_enable_remote_control=True,
        broker_heartbeat=0,
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )

    def run_task(payload: dict[str, Any]) -> None:
        if run is None:
            raise RuntimeError("this process does not run gitsync tasks")
        run(payload)

    app.task(name=TASK_NAME, ignore_result=True, acks_late=True)(run_task)
    return app
