"""The notification senders (SendGrid, Discord, Teams, Telegram, Google Chat, Slack) against local servers that
check each request as the provider's API documentation describes it (tests/saas/): what was accepted, and what a
user reads when the provider refuses (its reason, the status, when to try again), the credential never shown."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import DISCORD_TOKEN, GOOGLE_TOKEN, SENDGRID_KEY, TELEGRAM_TOKEN
from services import free_port
from taskctx import make_context

from plugins.notifications.discord import DiscordIncomingWebhook
from plugins.notifications.googlechat import GoogleChatIncomingWebhook
from plugins.notifications.sendgrid import SendGridMailSend
from plugins.notifications.slack import SlackIncomingWebhook
from plugins.notifications.teams import TeamsIncomingWebhook
from plugins.notifications.telegram import TelegramSend
from runner.api import RunContext, TaskFailed


def task(cls: type, **props: Any) -> Any:
    """A task as the flow loader builds it (properties already rendered)."""
    return cls.model_validate({"id": "notify", "type": cls.type_name, **props})


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[RunContext]:
    yield make_context(tmp_path)


def refused(sender: Any, ctx: RunContext) -> TaskFailed:
    with pytest.raises(TaskFailed) as raised:
        sender.run(ctx)
    return raised.value


# --- SendGrid ------------------------------------------------------------------------------------------------


def sendgrid(server: Any, **props: Any) -> Any:
    base = {
        "sendgridApiKey": SENDGRID_KEY,
        "from": "kestra@acme.example",
        "to": ["ops@acme.example", "lead@acme.example"],
        "subject": "Nightly load finished",
        "htmlContent": "<p>Loaded <b>42</b> rows</p>",
        "endpointOverride": server.url,
    }
    return task(SendGridMailSend, **{**base, **props})


def test_sendgrid_sends_the_mail_api_body(ctx: RunContext, sendgrid_api: Any) -> None:
    report = ctx.storage.put(b"id,rows\n1,42\n", "report.csv")
    outputs = sendgrid(
        sendgrid_api,
        cc=["audit@acme.example"],
        textContent="Loaded 42 rows",
        attachments=[{"uri": report, "name": "report.csv", "contentType": "text/csv"}],
    ).run(ctx)
    assert outputs["statusCode"] == 202 and outputs["body"] == ""
    assert outputs["headers"]["x-message-id"].startswith("msg-")
    body = sendgrid_api.accepted[-1].json()
    assert body["personalizations"] == [
        {
            "to": [{"email": "ops@acme.example"}, {"email": "lead@acme.example"}],
            "cc": [{"email": "audit@acme.example"}],
            "subject": "Nightly load finished",
        }
    ]
    assert body["from"] == {"email": "kestra@acme.example"}
    assert body["content"] == [
        {"type": "text/plain", "value": "Loaded 42 rows"},
        {"type": "text/html", "value": "<p>Loaded <b>42</b> rows</p>"},
    ]
    attachment = body["attachments"][0]
    assert base64.b64decode(attachment["content"]) == b"id,rows\n1,42\n"
    assert (attachment["filename"], attachment["type"], attachment["disposition"]) == (
        "report.csv",
        "text/csv",
        "attachment",
    )
    assert "SendGrid accepted the mail to 3 recipient(s) (HTTP 202)" in ctx.logger.messages("INFO")  # type: ignore[attr-defined]


def test_sendgrid_refusals_in_its_own_words(ctx: RunContext, sendgrid_api: Any) -> None:
    wrong = refused(sendgrid(sendgrid_api, sendgridApiKey="SG.wrong-key-123"), ctx)
    assert wrong.message == (
        "SendGrid answered HTTP 401, the credential was refused: "
        "The provided authorization grant is invalid, expired, or revoked"
    )
    assert wrong.permanent and "SG.wrong-key-123" not in wrong.message
    bad = refused(sendgrid(sendgrid_api, **{"from": "not-an-address"}), ctx)
    assert bad.message == (
        "SendGrid answered HTTP 400: The from email does not contain a valid address. (field from.email)"
    )
    assert bad.permanent
    sendgrid_api.throttle(1, retry_after=3)
    limited = refused(sendgrid(sendgrid_api), ctx)
    assert limited.message == (
        "SendGrid is rate limiting (HTTP 429): too many requests; it asks to wait 3 s before trying again"
    )
    assert not limited.permanent  # a later attempt (the task's retry) may pass


def test_sendgrid_needs_a_body(ctx: RunContext, sendgrid_api: Any) -> None:
    sent = len(sendgrid_api.received)
    assert refused(sendgrid(sendgrid_api, htmlContent=None), ctx).message == (
        "set htmlContent or textContent (the mail's body)"
    )
    assert len(sendgrid_api.received) == sent  # refused before anything was sent


def test_an_unreachable_provider_hides_the_url(ctx: RunContext) -> None:
    url = f"http://127.0.0.1:{free_port()}/api/webhooks/1/{DISCORD_TOKEN}"
    failure = refused(task(DiscordIncomingWebhook, url=url, payload='{"content": "x"}'), ctx)
    assert failure.message.startswith("Discord webhook could not be reached (URL hidden): ")
    assert DISCORD_TOKEN not in failure.message and failure.permanent


# --- Discord -------------------------------------------------------------------------------------------------


def test_discord_posts_the_payload(ctx: RunContext, discord_api: Any) -> None:
    payload = '{"username": "Kestra", "content": "Nightly load done", "embeds": [{"title": "rows", "color": 65280}]}'
    assert task(DiscordIncomingWebhook, url=discord_api.webhook_url(), payload=payload).run(ctx) == {}
    assert discord_api.accepted[-1].json()["content"] == "Nightly load done"
    assert "Discord message sent (HTTP 204)" in ctx.logger.messages("INFO")  # type: ignore[attr-defined]


def test_discord_refusals(ctx: RunContext, discord_api: Any) -> None:
    wrong = refused(
        task(DiscordIncomingWebhook, url=discord_api.webhook_url("stolen"), payload='{"content": "x"}'), ctx
    )
    assert wrong.message == "Discord webhook answered HTTP 401, the credential was refused: Invalid Webhook Token"
    empty = refused(task(DiscordIncomingWebhook, url=discord_api.webhook_url(), payload='{"content": ""}'), ctx)
    assert empty.message == "Discord webhook answered HTTP 400: Cannot send an empty message" and empty.permanent
    named = refused(
        task(DiscordIncomingWebhook, url=discord_api.webhook_url(), payload='{"content": "x", "username": "Discord"}'),
        ctx,
    )
    assert named.message == "Discord webhook answered HTTP 400: Invalid Form Body"
    discord_api.throttle(1, retry_after=2)
    limited = refused(task(DiscordIncomingWebhook, url=discord_api.webhook_url(), payload='{"content": "x"}'), ctx)
    assert limited.message == (
        "Discord webhook is rate limiting (HTTP 429): You are being rate limited;"
        " it asks to wait 2 s before trying again"
    )
    broken = refused(task(DiscordIncomingWebhook, url=discord_api.webhook_url(), payload="{oops"), ctx)
    assert broken.message.startswith("Discord webhook: payload is not valid JSON: ")


# --- Microsoft Teams -----------------------------------------------------------------------------------------


def test_teams_accepts_a_message_card_and_an_adaptive_card(ctx: RunContext, teams_api: Any) -> None:
    card = (
        '{"@type": "MessageCard", "@context": "http://schema.org/extensions", "summary": "Load done", "sections": []}'
    )
    task(TeamsIncomingWebhook, url=teams_api.webhook_url, payload=card).run(ctx)
    adaptive = (
        '{"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",'
        ' "content": {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "Done"}]}}]}'
    )
    task(TeamsIncomingWebhook, url=teams_api.webhook_url, payload=adaptive).run(ctx)
    assert [r.json().get("@type", r.json().get("type")) for r in teams_api.accepted[-2:]] == ["MessageCard", "message"]


def test_teams_refusals(ctx: RunContext, teams_api: Any) -> None:
    no_summary = refused(task(TeamsIncomingWebhook, url=teams_api.webhook_url, payload='{"@type": "MessageCard"}'), ctx)
    assert no_summary.message == "Microsoft Teams webhook answered HTTP 400: Summary or Text is required."
    gone = refused(task(TeamsIncomingWebhook, url=f"{teams_api.url}/webhookb2/other", payload='{"text": "x"}'), ctx)
    assert gone.message == "Microsoft Teams webhook answered HTTP 404: Webhook not found"
    assert "0wner-secret" not in gone.message
    teams_api.throttle(1, retry_after=5)
    limited = refused(task(TeamsIncomingWebhook, url=teams_api.webhook_url, payload='{"text": "x"}'), ctx)
    assert "HTTP 429" in limited.message and "wait 5 s" in limited.message and not limited.permanent


# --- Telegram ------------------------------------------------------------------------------------------------


def telegram(server: Any, **props: Any) -> Any:
    base = {
        "token": TELEGRAM_TOKEN,
        "channel": "@ops_alerts",
        "payload": "<b>Load</b> done",
        "endpointOverride": server.url,
    }
    return task(TelegramSend, **{**base, **props})


def test_telegram_sends_the_message(ctx: RunContext, telegram_api: Any) -> None:
    telegram(telegram_api, parseMode="HTML").run(ctx)
    request = telegram_api.accepted[-1]
    assert request.path == f"/bot{TELEGRAM_TOKEN}/sendMessage"
    assert request.json() == {"chat_id": "@ops_alerts", "text": "<b>Load</b> done", "parse_mode": "HTML"}
    telegram(telegram_api, channel="-1001234", parseMode="MARKDOWNV2").run(ctx)
    assert telegram_api.accepted[-1].json()["parse_mode"] == "MarkdownV2"
    assert any(m.startswith("Telegram message ") for m in ctx.logger.messages("INFO"))  # type: ignore[attr-defined]


def test_telegram_refusals_hide_the_token(ctx: RunContext, telegram_api: Any) -> None:
    wrong = refused(telegram(telegram_api, token="999:not-the-bot"), ctx)
    assert wrong.message == "Telegram Bot API answered HTTP 401, the credential was refused: Unauthorized"
    lost = refused(telegram(telegram_api, channel="@nobody"), ctx)
    assert lost.message == "Telegram Bot API answered HTTP 400: Bad Request: chat not found" and lost.permanent
    telegram_api.throttle(1, retry_after=4)
    limited = refused(telegram(telegram_api), ctx)
    assert limited.message == (
        "Telegram Bot API is rate limiting (HTTP 429): Too Many Requests: retry after 4;"
        " it asks to wait 4 s before trying again"
    )
    for failure in (wrong, lost, limited):
        assert TELEGRAM_TOKEN not in failure.message


# --- Google Chat ---------------------------------------------------------------------------------------------


def test_google_chat_posts_and_refuses(ctx: RunContext, googlechat_api: Any) -> None:
    task(GoogleChatIncomingWebhook, url=googlechat_api.webhook_url(), payload='{"text": "Load done"}').run(ctx)
    assert googlechat_api.accepted[-1].json() == {"text": "Load done"}
    empty = refused(task(GoogleChatIncomingWebhook, url=googlechat_api.webhook_url(), payload="{}"), ctx)
    assert empty.message == (
        "Google Chat webhook answered HTTP 400: Message cannot be empty. Discarded message must contain text or cards."
        " [INVALID_ARGUMENT]"
    )
    wrong = refused(
        task(GoogleChatIncomingWebhook, url=googlechat_api.webhook_url("forged"), payload='{"text": "x"}'), ctx
    )
    assert wrong.message == (
        "Google Chat webhook answered HTTP 401, the credential was refused:"
        " Request had invalid authentication credentials. [UNAUTHENTICATED]"
    )
    assert GOOGLE_TOKEN not in wrong.message


# --- Slack (the incoming webhook, over the same post) --------------------------------------------------------


def test_slack_refusal_in_its_words(ctx: RunContext, slack_api: Any) -> None:
    task(SlackIncomingWebhook, url=slack_api.webhook_url, messageText="Load done").run(ctx)
    assert slack_api.accepted[-1].json() == {"text": "Load done"}
    blank = refused(task(SlackIncomingWebhook, url=slack_api.webhook_url, payload='{"text": ""}'), ctx)
    assert blank.message == "Slack webhook answered HTTP 400: no_text"
    wrong = refused(task(SlackIncomingWebhook, url=f"{slack_api.url}/services/T/B/guess", messageText="x"), ctx)
    assert wrong.message == "Slack webhook answered HTTP 403, the credential was refused: invalid_token"


# --- a summary given by hand (what the engine puts in RunContext.execution) ----------------------------------


def test_a_summary_without_a_public_url_has_no_link(tmp_path: Path, slack_api: Any, teams_api: Any) -> None:
    from plugins.notifications.slack import SlackExecution
    from plugins.notifications.teams import TeamsExecution
    from runner.api import ExecutionView, TaskRunView

    runs = (
        TaskRunView(id="r1", task_id="extract", state="SUCCESS"),
        TaskRunView(id="r2", task_id="load", state="WARNING"),
        TaskRunView(id="r3", task_id="publish", state="SUCCESS"),
    )
    view = ExecutionView(
        id="7Hx2", namespace="acme.etl", flow_id="nightly", state="WARNING",
        started_at="2026-03-01T02:00:00+00:00", ended_at="2026-03-01T03:01:02.5+00:00", task_runs=runs, current=False,
    )  # fmt: skip
    ctx = make_context(tmp_path, execution=view)
    task(SlackExecution, url=slack_api.webhook_url).run(ctx)
    slack = slack_api.accepted[-1].json()
    assert slack["text"] == "*[acme.etl] nightly ➛ WARNING*\n> Succeeded after 01:01:02.500"
    assert "accessory" not in slack["blocks"][0] and slack["attachments"][0]["color"] == "warning"
    final = {f["title"]: f["value"] for f in slack["attachments"][0]["fields"]}["Final task ID"]
    assert final == "publish"  # of another execution: the last task run in its final state (SUCCESS)
    task(TeamsExecution, url=teams_api.webhook_url, themeColor="FF0000").run(ctx)
    card = teams_api.accepted[-1].json()
    assert card["themeColor"] == "FF0000" and "potentialAction" not in card
    assert card["summary"] == "*[acme.etl] nightly ➛ WARNING*\n> Succeeded after 01:01:02.500"


def test_a_summary_task_without_an_execution_says_so(ctx: RunContext, slack_api: Any) -> None:
    from plugins.notifications.slack import SlackExecution

    sent = len(slack_api.received)
    failure = refused(task(SlackExecution, url=slack_api.webhook_url), ctx)
    assert failure.message == "this task reports on an execution, but none was given to it"
    assert len(slack_api.received) == sent
