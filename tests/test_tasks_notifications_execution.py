"""The `*Execution` notification tasks, run by the real engine from flows in git: each posts a summary of the
execution it reports on (its own, or the one a Flow trigger's `{{ trigger.executionId }}` names) to a local
server that checks the provider's documented request shape. What is asserted is what a reader of the message and
of the execution sees: ids, namespace, flow, state, the failed task, the link to the UI, the custom fields, the
task's state and error; the webhook URLs, tokens and keys (secrets) never in a log line."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import installed
import pytest
import yaml
from conftest import DISCORD_TOKEN, GOOGLE_TOKEN, SENDGRID_KEY, SLACK_PATH, TEAMS_PATH, TELEGRAM_TOKEN
from runtime import Runtime

from gitsync.compose import build_runs
from gitsync.config import load_settings

PUBLIC_URL = "https://gitsync.acme.example"


class NotifyRuntime(Runtime):
    """The test runtime with a secrets file and `http.public_url` (the link notifications give)."""

    def __init__(self, tmp: Path, secrets: dict[str, str]) -> None:
        super().__init__(tmp)
        self.runs.shutdown()
        secrets_file = tmp / "secrets.yaml"
        secrets_file.write_text(yaml.safe_dump(secrets), encoding="utf-8")
        overrides = {
            "db": str(tmp / "state.db"),
            "data_dir": str(self.data_dir),
            "secrets_file": str(secrets_file),
            "http.public_url": PUBLIC_URL,
        }
        self.runs = build_runs(self.store, load_settings(None, overrides), installed.registry(), status_sources=None)

    def wait_for(self, uid: str) -> dict[str, Any]:
        """The latest execution of `uid` once it ended (a Flow trigger starts it on a thread of its own)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = self.store.query_one("SELECT id, state FROM executions WHERE flow_uid = ? ORDER BY id DESC", (uid,))
            if row and row["state"] in ("SUCCESS", "FAILED", "WARNING", "KILLED"):
                return self.execution(row["id"])
            time.sleep(0.05)
        raise AssertionError(f"no ended execution of {uid}")


@pytest.fixture
def rt(
    tmp_path: Path,
    slack_api: Any,
    discord_api: Any,
    teams_api: Any,
    telegram_api: Any,
    googlechat_api: Any,
    sendgrid_api: Any,
) -> Iterator[NotifyRuntime]:
    runtime = NotifyRuntime(
        tmp_path,
        {
            "SLACK_WEBHOOK": slack_api.webhook_url,
            "DISCORD_WEBHOOK": discord_api.webhook_url(),
            "TEAMS_WEBHOOK": teams_api.webhook_url,
            "TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "GOOGLE_WEBHOOK": googlechat_api.webhook_url(),
            "SENDGRID_API_KEY": SENDGRID_KEY,
            "WRONG_KEY": "SG.revoked-key-987",
        },
    )
    yield runtime
    runtime.close()


NIGHTLY = """
    id: nightly
    namespace: acme.etl
    tasks:
      - id: extract
        type: io.kestra.plugin.core.log.Log
        message: extracting
      - id: boom
        type: io.kestra.plugin.core.execution.Fail
        errorMessage: the warehouse refused the load
"""


def alerts(telegram: str, sendgrid: str) -> str:
    return f"""
    id: alerts
    namespace: acme.ops
    tasks:
      - id: slack
        type: io.kestra.plugin.notifications.slack.SlackExecution
        url: "{{{{ secret('SLACK_WEBHOOK') }}}}"
        executionId: "{{{{ trigger.executionId }}}}"
        customMessage: "Owner: data team"
        customFields:
          Env: prod
      - id: discord
        type: io.kestra.plugin.notifications.discord.DiscordExecution
        url: "{{{{ secret('DISCORD_WEBHOOK') }}}}"
        executionId: "{{{{ trigger.executionId }}}}"
        username: Kestra
        content: "Nightly load report"
        embedList:
          - title: Nightly
            color: [255, 0, 0]
      - id: teams
        type: io.kestra.plugin.notifications.teams.TeamsExecution
        url: "{{{{ secret('TEAMS_WEBHOOK') }}}}"
        executionId: "{{{{ trigger.executionId }}}}"
        activityTitle: Nightly load
      - id: telegram
        type: io.kestra.plugin.notifications.telegram.TelegramExecution
        token: "{{{{ secret('TELEGRAM_TOKEN') }}}}"
        channel: "@ops_alerts"
        endpointOverride: {telegram}
        executionId: "{{{{ trigger.executionId }}}}"
      - id: google
        type: io.kestra.plugin.notifications.google.GoogleChatExecution
        url: "{{{{ secret('GOOGLE_WEBHOOK') }}}}"
        executionId: "{{{{ trigger.executionId }}}}"
      - id: mail
        type: io.kestra.plugin.notifications.sendgrid.SendGridMailExecution
        sendgridApiKey: "{{{{ secret('SENDGRID_API_KEY') }}}}"
        endpointOverride: {sendgrid}
        from: kestra@acme.example
        to: [ops@acme.example]
        subject: "Execution {{{{ trigger.executionId }}}} failed"
        executionId: "{{{{ trigger.executionId }}}}"
    triggers:
      - id: on_failure
        type: io.kestra.plugin.core.trigger.Flow
        conditions:
          - type: io.kestra.plugin.core.condition.ExecutionStatus
            in: [FAILED]
          - type: io.kestra.plugin.core.condition.ExecutionNamespace
            namespace: acme.etl
            prefix: true
"""


def test_a_flow_trigger_reports_the_failed_execution_everywhere(
    rt: NotifyRuntime,
    slack_api: Any,
    discord_api: Any,
    teams_api: Any,
    telegram_api: Any,
    googlechat_api: Any,
    sendgrid_api: Any,
) -> None:
    rt.deploy({"nightly.yaml": NIGHTLY, "alerts.yaml": alerts(telegram_api.url, sendgrid_api.url)})
    failed = rt.run("acme.etl.nightly")
    assert failed["state"] == "FAILED"
    report = rt.wait_for("acme.ops.alerts")
    assert rt.states(report) == {t: "SUCCESS" for t in ("slack", "discord", "teams", "telegram", "google", "mail")}
    upstream, link = failed["id"], f"{PUBLIC_URL}/executions/{failed['id']}"
    title = "[acme.etl] nightly ➛ FAILED"
    outcome_prefix = "Failed on task `boom` after 00:00:"

    slack = slack_api.accepted[-1].json()
    assert slack["text"].startswith(f"*<{link}|{title}>*\n> {outcome_prefix}")
    assert slack["blocks"][0] == {"type": "section", "text": {"type": "mrkdwn", "text": "Owner: data team"}}
    assert slack["blocks"][1]["accessory"]["url"] == link
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields == {
        "Namespace": "acme.etl",
        "Flow ID": "nightly",
        "Execution ID": upstream,
        "Execution Status": "FAILED",
        "Env": "prod",
        "Final task ID": "boom",
    }
    assert slack["attachments"][0]["color"] == "danger"

    discord = discord_api.accepted[-1].json()
    assert (discord["username"], discord["content"]) == ("Kestra", "Nightly load report")
    embed = discord["embeds"][0]
    assert embed["title"] == "Nightly" and embed["color"] == 0xFF0000
    assert f"Execution ID: {upstream}" in embed["description"] and link in embed["description"]
    assert embed["footer"]["text"].startswith(outcome_prefix)

    teams = teams_api.accepted[-1].json()
    assert teams["@type"] == "MessageCard" and teams["themeColor"] == "0076D7"
    assert teams["sections"][0]["activityTitle"] == "Nightly load"
    facts = {f["name"]: f["value"] for f in teams["sections"][0]["facts"]}
    assert facts["Execution ID"] == upstream and facts["Final task ID"] == "boom"

    telegram = telegram_api.accepted[-1].json()
    assert telegram["chat_id"] == "@ops_alerts"
    assert telegram["text"].startswith(
        f"<acme.etl nightly {upstream} ➛ FAILED - Final task ID ➛ boom> {outcome_prefix}"
    )
    assert telegram["text"].endswith(f"({link})")

    google = googlechat_api.accepted[-1].json()
    assert f"Execution ID {upstream}" in google["text"] and f"*<{link}|{title}>*" in google["text"]

    mail = sendgrid_api.accepted[-1].json()
    assert mail["personalizations"][0]["subject"] == f"Execution {upstream} failed"
    plain, html = mail["content"]
    assert plain["type"] == "text/plain" and f"Execution ID: {upstream}" in plain["value"]
    assert html["type"] == "text/html" and f'<a href="{link}">' in html["value"]

    secrets = (SLACK_PATH, DISCORD_TOKEN, TEAMS_PATH, TELEGRAM_TOKEN, GOOGLE_TOKEN, SENDGRID_KEY)
    for line in report["logs"]:
        assert not any(secret in line for secret in secrets), line


def test_an_execution_reports_itself_while_it_runs(rt: NotifyRuntime, slack_api: Any, discord_api: Any) -> None:
    rt.deploy(
        {
            "self.yaml": """
            id: load
            namespace: acme.etl
            tasks:
              - id: extract
                type: io.kestra.plugin.core.log.Log
                message: extracting
              - id: tell
                type: io.kestra.plugin.notifications.slack.SlackExecution
                url: "{{ secret('SLACK_WEBHOOK') }}"
            errors:
              - id: alarm
                type: io.kestra.plugin.notifications.discord.DiscordExecution
                url: "{{ secret('DISCORD_WEBHOOK') }}"
            """,
            "fails.yaml": """
            id: fragile
            namespace: acme.etl
            tasks:
              - id: boom
                type: io.kestra.plugin.core.execution.Fail
            errors:
              - id: alarm
                type: io.kestra.plugin.notifications.discord.DiscordExecution
                url: "{{ secret('DISCORD_WEBHOOK') }}"
            """,
        }
    )
    done = rt.run("acme.etl.load")
    assert done["state"] == "SUCCESS"
    slack = slack_api.accepted[-1].json()
    fields = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}
    assert fields["Execution ID"] == done["id"]
    assert fields["Execution Status"] == "RUNNING"  # it reports while it runs, as Kestra's does
    assert fields["Final task ID"] == "extract"  # the task before it, not itself
    assert "> Succeeded after 00:00:" in slack["text"]

    failed = rt.run("acme.etl.fragile")
    assert failed["state"] == "FAILED" and rt.states(failed)["alarm"] == "SUCCESS"
    embed = discord_api.accepted[-1].json()["embeds"][0]
    assert f"Execution ID: {failed['id']}" in embed["description"]
    assert embed["footer"]["text"].startswith("Failed on task `boom` after ")


def test_a_refused_notification_fails_the_task_with_the_reason(rt: NotifyRuntime, sendgrid_api: Any) -> None:
    rt.deploy(
        {
            "mail.yaml": f"""
            id: mailer
            namespace: acme.ops
            tasks:
              - id: mail
                type: io.kestra.plugin.notifications.sendgrid.SendGridMailExecution
                sendgridApiKey: "{{{{ secret('WRONG_KEY') }}}}"
                endpointOverride: {sendgrid_api.url}
                from: kestra@acme.example
                to: [ops@acme.example]
                subject: report
            """,
            "lookup.yaml": """
            id: lookup
            namespace: acme.ops
            tasks:
              - id: other
                type: io.kestra.plugin.notifications.slack.SlackExecution
                url: "http://127.0.0.1:9/never"
                executionId: "no-such-execution"
            """,
        }
    )
    execution = rt.run("acme.ops.mailer")
    assert execution["state"] == "FAILED" and rt.states(execution) == {"mail": "FAILED"}
    (run,) = execution["task_runs"]
    assert run["error"] == (
        "task 'mail': SendGrid answered HTTP 401, the credential was refused: "
        "The provided authorization grant is invalid, expired, or revoked"
    )
    assert not any("SG.revoked-key-987" in line for line in execution["logs"])
    lookup = rt.run("acme.ops.lookup")
    assert lookup["task_runs"][0]["error"] == (
        "task 'other': executionId 'no-such-execution': there is no execution with that id"
    )


def test_the_summary_tasks_validate_with_kestra_names(rt: NotifyRuntime) -> None:
    """The older `io.kestra.plugin.notifications.*` names and the new Slack and mail ones load alike."""
    rt.deploy(
        {
            "names.yaml": """
            id: names
            namespace: acme.ops
            tasks:
              - id: a
                type: io.kestra.plugin.slack.notifications.SlackExecution
                url: https://hooks.slack.com/services/T/B/x
              - id: b
                type: io.kestra.plugin.notifications.mail.MailExecution
                host: smtp.acme.example
                from: a@acme.example
                to: b@acme.example
              - id: c
                type: io.kestra.plugin.email.MailExecution
                host: smtp.acme.example
                from: a@acme.example
                to: b@acme.example
            triggers: []
            """,
        }
    )
    rows = rt.store.query("SELECT uid FROM flows WHERE uid = 'acme.ops.names'")
    assert rows == [{"uid": "acme.ops.names"}]  # the sync applied: the loader refused none of the names


class Inbox:
    """What a real SMTP server (aiosmtpd) received."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[int, Inbox]]:
    from aiosmtpd.controller import Controller
    from services import free_port

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller.port, inbox
    controller.stop()


def test_mail_execution_mails_the_summary(rt: NotifyRuntime, smtp: tuple[int, Inbox]) -> None:
    from email import message_from_bytes, policy

    port, inbox = smtp
    rt.deploy(
        {
            "mailed.yaml": f"""
            id: mailed
            namespace: acme.etl
            tasks:
              - id: boom
                type: io.kestra.plugin.core.execution.Fail
            errors:
              - id: mail
                type: io.kestra.plugin.notifications.mail.MailExecution
                host: 127.0.0.1
                port: {port}
                transportStrategy: SMTP
                from: kestra@acme.example
                to: ops@acme.example
                customFields:
                  Team: data
            """,
        }
    )
    execution = rt.run("acme.etl.mailed")
    assert execution["state"] == "FAILED" and rt.states(execution)["mail"] == "SUCCESS"
    message = message_from_bytes(inbox.envelopes[-1].content, policy=policy.default)
    assert message["Subject"] == "[acme.etl] mailed ➛ RUNNING"
    plain = message.get_body(("plain",)).get_content()
    assert f"Execution ID: {execution['id']}" in plain and "Team: data" in plain
    assert "Failed on task `boom` after 00:00:" in plain
    html = message.get_body(("html",)).get_content()
    assert f'<a href="{PUBLIC_URL}/executions/{execution["id"]}">' in html


def test_a_rate_limited_send_is_retried_and_a_refused_key_is_not(rt: NotifyRuntime, sendgrid_api: Any) -> None:
    def flow(name: str, key: str) -> str:
        return f"""
            id: {name}
            namespace: acme.ops
            tasks:
              - id: mail
                type: io.kestra.plugin.notifications.sendgrid.SendGridMailSend
                sendgridApiKey: "{{{{ secret('{key}') }}}}"
                endpointOverride: {sendgrid_api.url}
                from: kestra@acme.example
                to: [ops@acme.example]
                subject: report
                textContent: all good
                retry:
                  type: constant
                  interval: PT0.1S
                  maxAttempts: 3
            """

    rt.deploy({"limited.yaml": flow("limited", "SENDGRID_API_KEY"), "revoked.yaml": flow("revoked", "WRONG_KEY")})
    sendgrid_api.throttle(1, retry_after=1)
    limited = rt.run("acme.ops.limited")
    assert limited["state"] == "SUCCESS"
    assert [run["state"] for run in limited["task_runs"]] == ["RETRIED", "SUCCESS"]
    assert (
        "SendGrid is rate limiting (HTTP 429): too many requests; it asks to wait 1 s"
        in limited["task_runs"][0]["error"]
    )
    revoked = rt.run("acme.ops.revoked")
    assert revoked["state"] == "FAILED" and len(revoked["task_runs"]) == 1  # trying again fails the same way


def test_the_execution_travels_to_a_worker_as_plain_data() -> None:
    from runner.api import ExecutionView, TaskRunView
    from runner.engine.invocation import TaskInvocation

    view = ExecutionView(
        id="e1",
        namespace="acme",
        flow_id="f",
        state="FAILED",
        started_at="2026-01-02T03:04:05+00:00",
        ended_at="2026-01-02T03:04:07.250000+00:00",
        task_runs=(TaskRunView(id="r1", task_id="boom", state="FAILED", value={"k": 1}),),
        current=False,
    )
    invocation = TaskInvocation(
        type="t", properties={}, execution_id="e2", namespace="acme", flow_id="g", flow_revision=1,
        task_id="x", task_run_id="r2", attempt=1, execution=view.to_dict(),
    )  # fmt: skip
    received = TaskInvocation.from_json(invocation.to_json())
    assert received.execution is not None and ExecutionView.from_dict(received.execution) == view

    from plugins.notifications.summary import Summary

    summary = Summary.of(view, {}, None)
    assert (summary.duration, summary.outcome) == ("00:00:02.250", "Failed on task `boom` after 00:00:02.250")
