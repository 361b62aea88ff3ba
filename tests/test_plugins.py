"""Property models of the built-in plugins: each type validates what Kestra accepts and rejects the rest."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gitsync.flows.schema import flow_schema
from plugins.core.log import Log
from runner.cron import CronError, parse_cron, parse_timezone
from runner.plugin import Condition, FlowableTask, Trigger
from runner.registry import Registry, load_entry_points


@pytest.fixture(scope="module")
def registry() -> Registry:
    return load_entry_points()


CORE = "io.kestra.plugin.core."
SERDES = "io.kestra.plugin.serdes."
COMPRESS = "io.kestra.plugin.compress."
FS = "io.kestra.plugin.fs."  # fs ssh/sftp
SFTP = {"host": "h", "username": "u", "password": "{{ secret('P') }}"}  # fs ssh/sftp
LOG = {"id": "hello", "type": CORE + "log.Log", "message": "hi"}

VALID: list[Any] = [
    pytest.param({"id": "a", "type": CORE + "log.Log", "message": ["one", "two"], "level": "warn"}, id="Log"),
    pytest.param({"id": "a", "type": CORE + "debug.Return", "format": "{{ flow.id }}"}, id="Return"),
    pytest.param({"id": "a", "type": CORE + "debug.Echo", "format": "x", "level": "DEBUG"}, id="Echo"),
    pytest.param({"id": "a", "type": CORE + "output.OutputValues", "values": {"k": [1, 2]}}, id="OutputValues"),
    pytest.param({"id": "a", "type": CORE + "execution.Fail", "condition": "{{ x }}", "errorMessage": "no"}, id="Fail"),
    pytest.param({"id": "a", "type": CORE + "execution.Exit", "state": "KILLED"}, id="Exit"),
    pytest.param({"id": "a", "type": CORE + "execution.Labels", "labels": [{"key": "k", "value": 1}]}, id="Labels"),
    pytest.param({"id": "a", "type": CORE + "flow.Sequential", "tasks": [LOG], "errors": [LOG]}, id="Sequential"),
    pytest.param({"id": "a", "type": CORE + "flow.Parallel", "tasks": [LOG], "concurrent": 2}, id="Parallel"),
    pytest.param({"id": "a", "type": CORE + "flow.If", "condition": True, "then": [LOG], "else": [LOG]}, id="If"),
    pytest.param(
        {"id": "a", "type": CORE + "flow.Switch", "value": "{{ inputs.x }}", "cases": {"A": [LOG]}, "defaults": [LOG]},
        id="Switch",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "flow.ForEach", "values": ["a", "b"], "concurrencyLimit": 0, "tasks": [LOG]},
        id="ForEach",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.EachSequential", "value": '["a"]', "tasks": [LOG]}, id="EachSeq"),
    pytest.param(
        {"id": "a", "type": CORE + "flow.EachParallel", "value": [1, 2], "concurrent": 3, "tasks": [LOG]}, id="EachPar"
    ),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.Subflow",
            "namespace": "company.team",
            "flowId": "child",
            "revision": 3,
            "inputs": {"x": 1},
            "labels": {"team": "data"},
            "wait": False,
            "transmitFailed": False,
            "inheritLabels": "{{ inputs.inherit }}",
            "scheduleDate": "{{ now() | dateAdd(1, 'HOURS') }}",
        },
        id="Subflow",
    ),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.Pause",
            "pauseDuration": "PT5M",
            "behavior": "WARN",
            "onResume": [{"id": "ok", "type": "BOOLEAN", "defaults": True}],
        },
        id="Pause",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.Pause", "delay": "PT1S", "tasks": [LOG]}, id="Pause-legacy"),
    pytest.param({"id": "a", "type": CORE + "flow.Sleep", "duration": "PT1M"}, id="Sleep"),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.WorkingDirectory",
            "tasks": [LOG],
            "inputFiles": {"main.py": "print(1)"},
            "outputFiles": ["*.csv"],
            "namespaceFiles": {"enabled": True, "include": ["scripts/**"]},
            "cache": {"patterns": ["node_modules/**"], "ttl": "PT1H"},
        },
        id="WorkingDirectory",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.AllowFailure", "tasks": [LOG]}, id="AllowFailure"),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.Dag",
            "concurrent": 2,
            "tasks": [{"task": {**LOG, "id": "x"}}, {"task": {**LOG, "id": "y"}, "dependsOn": ["x"]}],
        },
        id="Dag",
    ),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "http.Request",
            "uri": "https://example.com",
            "method": "POST",
            "body": "{}",
            "headers": {"X-A": "b"},
            "options": {"timeout": {"connectTimeout": "PT5S"}, "auth": {"type": "BEARER", "token": "t"}},
            "encryptBody": True,
        },
        id="Request",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "http.Download", "uri": "https://x", "failOnEmptyResponse": False}, id="Download"
    ),
    pytest.param(
        {"id": "a", "type": CORE + "kv.Set", "key": "k", "value": {"a": 1}, "ttl": "P1D", "kvType": "JSON"}, id="KVSet"
    ),
    pytest.param({"id": "a", "type": CORE + "kv.Get", "key": "k", "errorOnMissing": True}, id="KVGet"),
    pytest.param({"id": "a", "type": CORE + "kv.Delete", "key": "k", "namespace": "other"}, id="KVDelete"),
    pytest.param({"id": "a", "type": CORE + "kv.GetKeys", "prefix": "p"}, id="KVGetKeys"),
    pytest.param(
        {"id": "a", "type": CORE + "storage.LocalFiles", "inputs": {"a.txt": "x"}, "outputs": ["*.txt"]},
        id="LocalFiles",
    ),
    pytest.param({"id": "a", "type": CORE + "storage.PurgeCurrentExecutionFiles"}, id="PurgeCurrentExecutionFiles"),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.scripts.shell.Commands",
            "commands": ["echo hi"],
            "taskRunner": {"type": CORE + "runner.Process"},
            "env": {"A": "1"},
            "beforeCommands": ["true"],
            "interpreter": ["/bin/bash", "-c"],
            "failFast": False,
            "warningOnStdErr": False,
            "targetOS": "LINUX",
            "outputFiles": ["out.txt"],
        },
        id="shell.Commands",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.scripts.shell.Script", "script": "echo hi", "runner": "PROCESS"},
        id="shell.Script",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.scripts.python.Commands",
            "commands": ["python main.py"],
            "containerImage": "python:3.12",
            "namespaceFiles": {"enabled": True},
            "docker": {"image": "python:3.11", "pullPolicy": "ALWAYS"},
        },
        id="python.Commands",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.scripts.python.Script",
            "script": "print(1)",
            "dependencies": ["pandas"],
            "pythonVersion": "3.12",
            "packageManager": "PIP",
        },
        id="python.Script",
    ),
    pytest.param({"type": CORE + "runner.Process"}, id="runner.Process"),
    pytest.param(
        {
            "type": "io.kestra.plugin.scripts.runner.docker.Docker",
            "pullPolicy": "NEVER",
            "cpu": {"cpus": 1.5},
            "memory": {"memory": "512MB"},
            "networkMode": "host",
            "credentials": {"username": "u", "password": "p"},
        },
        id="runner.Docker",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.core.tasks.scripts.Bash", "commands": ["echo 1"], "exitOnFailed": False},
        id="legacy.Bash",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.core.tasks.scripts.Python",
            "inputFiles": {"main.py": "print(1)"},
            "requirements": ["requests"],
        },
        id="legacy.Python",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.jdbc.sqlite.Query", "sql": "select 1", "fetchType": "FETCH_ONE"},
        id="sqlite.Query",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.sqlite.Queries",
            "url": "jdbc:sqlite:my.db",
            "sql": "select 1; select 2",
            "outputDbFile": True,
            "sqliteFile": "{{ outputs.x.uri }}",
        },
        id="sqlite.Queries",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.duckdb.Query",
            "sql": "select * from read_csv_auto('{{ workingDir }}/in.csv')",
            "inputFiles": {"in.csv": "{{ outputs.dl.uri }}"},
            "fetch": True,
        },
        id="duckdb.Query",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.duckdb.Queries",
            "sql": "copy t to 'out.csv'",
            "outputFiles": ["out.csv"],
            "parameters": {"n": 1},
        },
        id="duckdb.Queries",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.dbt.cli.DbtCLI",
            "commands": ["dbt build"],
            "profiles": "x: {}",
            "storeManifest": {"key": "manifest.json", "namespace": "ns"},
        },
        id="DbtCLI",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.dbt.cli.Build",
            "dbtPath": "/usr/local/bin/dbt",
            "runner": "DOCKER",
            "dockerOptions": {"image": "ghcr.io/kestra-io/dbt-duckdb"},
            "fullRefresh": True,
            "select": ["model_a"],
        },
        id="dbt.Build",
    ),
    pytest.param({"id": "a", "type": "io.kestra.plugin.dbt.cli.Run", "thread": 4}, id="dbt.Run"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.dbt.cli.Test", "exclude": ["slow"]}, id="dbt.Test"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.dbt.cli.Deps", "projectDir": "dbt"}, id="dbt.Deps"),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.git.Clone",
            "url": "https://github.com/a/b",
            "branch": "main",
            "depth": 5,
        },
        id="git.Clone",
    ),
    # git sync/push tasks (validated with a warning, run as a no-op), redis, ansible
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.git.SyncFlows",
            "url": "git@github.com:a/b.git",
            "gitDirectory": "flows/prod",
            "targetNamespace": "prod",
            "includeChildNamespaces": True,
            "delete": True,
            "dryRun": True,
        },
        id="git.SyncFlows",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.git.PushFlows", "url": "https://g/a/b", "flows": ["x*"], "delete": False},
        id="git.PushFlows",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.git.SyncNamespaceFiles", "url": "https://g/a/b", "namespace": "shared"},
        id="git.SyncNamespaceFiles",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.git.PushNamespaceFiles", "url": "https://g/a/b", "files": "**/*.sql"},
        id="git.PushNamespaceFiles",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.git.Sync", "url": "https://g/a/b", "branch": "main", "dryRun": False},
        id="git.Sync",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.redis.string.Set",
            "url": "redis://localhost:6379/0",
            "key": "k",
            "value": {"a": 1},
            "serdeType": "JSON",
            "get": True,
            "options": {"expirationDuration": "PT1M", "mustNotExist": True},
        },
        id="redis.Set",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.redis.string.Get",
            "url": "redis://h",
            "key": "k",
            "failedOnMissing": True,
        },
        id="redis.Get",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.redis.string.Delete", "url": "redis://h", "keys": ["a", "b"]},
        id="redis.Delete",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.redis.list.ListPush", "url": "redis://h", "key": "k", "from": ["a"]},
        id="redis.ListPush",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.redis.list.ListPop", "url": "redis://h", "key": "k", "maxRecords": 1},
        id="redis.ListPop",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.ansible.cli.AnsibleCLI",
            "inputFiles": {"inventory.ini": "localhost ansible_connection=local"},
            "commands": ["ansible-playbook -i inventory.ini playbook.yml"],
            "outputsMode": "EXPLICIT",
            "outputLogFile": True,
        },
        id="ansible.AnsibleCLI",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
            "url": "{{ secret('SLACK') }}",
            "messageText": "done",
        },
        id="SlackIncomingWebhook",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.email.MailSend",
            "host": "smtp.example.com",
            "port": 465,
            "from": "a@example.com",
            "to": "b@example.com",
            "subject": "s",
            "htmlTextContent": "<b>x</b>",
            "attachments": [{"name": "r.csv", "uri": "kestra:///r.csv"}],
        },
        id="MailSend",
    ),
    # notifications
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.slack.notifications.SlackExecution",
            "url": "{{ secret('SLACK') }}",
            "executionId": "{{ trigger.executionId }}",
            "customFields": {"env": "prod"},
            "customMessage": "see the runbook",
            "channel": "#ops",
        },
        id="SlackExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.email.MailExecution",
            "host": "smtp.example.com",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "executionId": "{{ trigger.executionId }}",
        },
        id="MailExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.fivetran.connectors.Sync",
            "apiKey": "{{ secret('FIVETRAN_API_KEY') }}",
            "apiSecret": "{{ secret('FIVETRAN_API_SECRET') }}",
            "connectorId": "enjoy_infect",
            "maxDuration": "PT30M",
        },
        id="FivetranSync",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.airbyte.connections.Sync",
            "url": "http://localhost:8000",
            "connectionId": "e3b1ce92-547c-436f-b1e8-23b6936c12cd",
            "username": "airbyte",
            "password": "{{ secret('AIRBYTE_PASSWORD') }}",
            "wait": False,
        },
        id="AirbyteSync",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.airbyte.connections.CheckStatus",
            "url": "http://localhost:8000",
            "jobId": "{{ outputs.sync.jobId }}",
            "pollFrequency": "PT5S",
        },
        id="AirbyteCheckStatus",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.airbyte.cloud.jobs.Sync",
            "connectionId": "e3b1ce92-547c-436f-b1e8-23b6936c12cd",
            "token": "{{ secret('AIRBYTE_TOKEN') }}",
        },
        id="AirbyteCloudSync",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.dbt.cloud.TriggerRun",
            "accountId": "123",
            "token": "{{ secret('DBT_CLOUD_TOKEN') }}",
            "jobId": "456",
            "wait": True,
        },
        id="DbtCloudTriggerRun",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.dbt.cloud.CheckStatus",
            "accountId": "123",
            "token": "{{ secret('DBT_CLOUD_TOKEN') }}",
            "runId": "{{ outputs.run.runId }}",
        },
        id="DbtCloudCheckStatus",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.openai.ChatCompletion",
            "apiKey": "{{ secret('OPENAI_API_KEY') }}",
            "model": "gpt-4o-mini",
            "prompt": "Summarize {{ inputs.text }}",
        },
        id="OpenAIChatCompletion",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.sendgrid.SendGridMailSend",
            "sendgridApiKey": "{{ secret('SENDGRID_API_KEY') }}",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "cc": "{{ inputs.cc }}",
            "subject": "s",
            "htmlContent": "<b>x</b>",
            "attachments": [{"name": "r.csv", "uri": "kestra:///r.csv", "contentType": "text/csv"}],
        },
        id="SendGridMailSend",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.sendgrid.SendGridMailExecution",
            "sendgridApiKey": "k",
            "from": "a@example.com",
            "to": ["b@example.com"],
            "executionId": "{{ trigger.executionId }}",
        },
        id="SendGridMailExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.discord.DiscordIncomingWebhook",
            "url": "{{ secret('D') }}",
            "payload": "{}",
        },
        id="DiscordIncomingWebhook",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.discord.DiscordExecution",
            "url": "{{ secret('D') }}",
            "username": "Kestra",
            "embedList": [{"title": "t", "color": [255, 0, 0], "footer": "f"}],
        },
        id="DiscordExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.teams.TeamsIncomingWebhook",
            "url": "{{ secret('T') }}",
            "payload": "{}",
        },
        id="TeamsIncomingWebhook",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.teams.TeamsExecution",
            "url": "{{ secret('T') }}",
            "activityTitle": "t",
        },
        id="TeamsExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.telegram.TelegramSend",
            "token": "{{ secret('TG') }}",
            "channel": "@ops",
            "payload": "hi",
            "parseMode": "HTML",
        },
        id="TelegramSend",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.notifications.telegram.TelegramExecution", "token": "t", "channel": "1"},
        id="TelegramExecution",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.google.GoogleChatIncomingWebhook",
            "url": "{{ secret('G') }}",
            "payload": "{}",
        },
        id="GoogleChatIncomingWebhook",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.notifications.google.GoogleChatExecution",
            "url": "{{ secret('G') }}",
            "text": "t",
        },
        id="GoogleChatExecution",
    ),
    pytest.param(
        {
            "id": "daily",
            "type": CORE + "trigger.Schedule",
            "cron": "0 9 * * MON-FRI",
            "timezone": "Europe/Paris",
            "recoverMissedSchedules": "LAST",
            "inputs": {"x": 1},
            "conditions": [{"type": CORE + "condition.Weekend"}],
        },
        id="Schedule",
    ),
    pytest.param(
        {
            "id": "up",
            "type": CORE + "trigger.Flow",
            "states": ["SUCCESS"],
            "preconditions": {
                "id": "p",
                "timeWindow": {"type": "SLIDING_WINDOW", "window": "PT1H"},
                "flows": [{"namespace": "a", "flowId": "b", "states": ["FAILED"]}],
                "where": [{"id": "w", "filters": [{"field": "NAMESPACE", "type": "STARTS_WITH", "value": "a"}]}],
            },
        },
        id="trigger.Flow",
    ),
    # aws
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.aws.s3.Upload",
            "region": "eu-west-1",
            "accessKeyId": "{{ secret('AWS_KEY') }}",
            "secretKeyId": "{{ secret('AWS_SECRET') }}",
            "bucket": "b",
            "key": "in/x.csv",
            "from": "{{ outputs.w.uri }}",
        },
        id="S3Upload",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.aws.s3.Download", "bucket": "b", "key": "in/x.csv"}, id="S3Download"
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.aws.s3.Downloads",
            "bucket": "b",
            "prefix": "in/",
            "action": "MOVE",
            "moveTo": {"key": "done/"},
        },
        id="S3Downloads",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.aws.s3.List", "bucket": "b", "prefix": "in/", "regexp": ".*\\.csv"},
        id="S3List",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.aws.s3.Delete", "bucket": "b", "key": "in/x.csv"}, id="S3Delete"
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.aws.s3.DeleteList", "bucket": "b", "prefix": "tmp/"}, id="S3DeleteList"
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.aws.s3.Copy",
            "from": {"bucket": "b", "key": "a"},
            "to": {"key": "c"},
            "delete": True,
        },
        id="S3Copy",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.aws.s3.CreateBucket",
            "bucket": "b",
            "endpointOverride": "http://localhost:9000",
        },
        id="S3CreateBucket",
    ),
    pytest.param(
        {
            "id": "t",
            "type": "io.kestra.plugin.aws.s3.Trigger",
            "bucket": "b",
            "prefix": "in/",
            "interval": "PT30S",
            "action": "DELETE",
        },
        id="S3Trigger",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.aws.cli.AwsCLI",
            "region": "eu-west-1",
            "accessKeyId": "{{ secret('AWS_KEY') }}",
            "secretKeyId": "{{ secret('AWS_SECRET') }}",
            "commands": ["aws s3 ls"],
        },
        id="AwsCLI",
    ),
    # jdbc postgres/mysql
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.postgresql.Query",
            "url": "jdbc:postgresql://db:5432/shop?sslmode=require",
            "username": "etl",
            "password": "{{ secret('PG_PASSWORD') }}",
            "sql": "SELECT * FROM orders WHERE day = :day",
            "parameters": {"day": "{{ trigger.date }}"},
            "fetchType": "STORE",
        },
        id="PostgresQuery",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.postgresql.Queries",
            "url": "jdbc:postgresql://db/shop",
            "sql": "DELETE FROM t; SELECT 1",
        },
        id="PostgresQueries",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.postgresql.CopyIn",
            "url": "jdbc:postgresql://db/shop",
            "table": "orders",
            "from": "{{ outputs.extract.uri }}",
            "format": "CSV",
            "header": True,
        },
        id="PostgresCopyIn",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.postgresql.CopyOut",
            "url": "jdbc:postgresql://db/shop",
            "sql": "SELECT * FROM orders",
        },
        id="PostgresCopyOut",
    ),
    pytest.param(
        {
            "id": "t",
            "type": "io.kestra.plugin.jdbc.postgresql.Trigger",
            "url": "jdbc:postgresql://db/shop",
            "sql": "SELECT 1",
            "interval": "PT5M",
        },
        id="PostgresTrigger",
    ),
    pytest.param(
        {
            "id": "a",
            "type": "io.kestra.plugin.jdbc.mysql.Query",
            "url": "jdbc:mysql://db:3306/shop",
            "sql": "SELECT 1",
            "fetchType": "FETCH",
        },
        id="MysqlQuery",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.jdbc.mysql.Queries", "url": "jdbc:mysql://db/shop", "sql": "SELECT 1"},
        id="MysqlQueries",
    ),
    pytest.param(
        {
            "id": "t",
            "type": "io.kestra.plugin.jdbc.mysql.Trigger",
            "url": "jdbc:mysql://db/shop",
            "sql": "SELECT 1",
            "interval": "PT1M",
        },
        id="MysqlTrigger",
    ),
    pytest.param(
        {"id": "hook", "type": CORE + "trigger.Webhook", "key": "s3cr3t", "wait": True, "returnOutputs": True},
        id="Webhook",
    ),
    pytest.param({"type": CORE + "condition.ExecutionStatus", "in": ["SUCCESS"], "notIn": ["FAILED"]}, id="ExecStatus"),
    pytest.param({"type": CORE + "condition.ExecutionFlow", "namespace": "a", "flowId": "b"}, id="ExecutionFlow"),
    pytest.param(
        {"type": CORE + "condition.ExecutionNamespace", "namespace": "a", "comparison": "PREFIX"}, id="ExecNamespace"
    ),
    pytest.param({"type": CORE + "condition.ExecutionLabels", "labels": {"env": "prod"}}, id="ExecutionLabels"),
    pytest.param({"type": CORE + "condition.ExecutionOutputs", "expression": "{{ x }}"}, id="ExecutionOutputs"),
    pytest.param({"type": CORE + "condition.Expression", "expression": "{{ true }}"}, id="Expression"),
    pytest.param({"type": CORE + "condition.Not", "conditions": [{"type": CORE + "condition.Weekend"}]}, id="Not"),
    pytest.param({"type": CORE + "condition.Or", "conditions": [{"type": CORE + "condition.Weekend"}]}, id="Or"),
    pytest.param({"type": CORE + "condition.DayWeek", "dayOfWeek": "MONDAY"}, id="DayWeek"),
    pytest.param(
        {"type": CORE + "condition.DayWeekInMonth", "dayOfWeek": "FRIDAY", "dayInMonth": "LAST"}, id="DayWeekInMonth"
    ),
    pytest.param({"type": CORE + "condition.Weekend", "date": "{{ trigger.date }}"}, id="Weekend"),
    pytest.param({"type": CORE + "condition.TimeBetween", "after": "09:00:00Z"}, id="TimeBetween"),
    pytest.param({"type": CORE + "condition.DateTimeBetween", "before": "2030-01-01T00:00:00Z"}, id="DateTimeBetween"),
    pytest.param({"type": CORE + "condition.HasRetryAttempt", "in": ["FAILED"]}, id="HasRetryAttempt"),
    pytest.param({"type": CORE + "condition.PublicHoliday", "country": "FR"}, id="PublicHoliday"),
    pytest.param(
        {
            "id": "multiple",
            "type": CORE + "condition.MultipleCondition",
            "window": "P1D",
            "windowAdvance": "P0D",
            "conditions": {"a": {"type": CORE + "condition.ExecutionFlow", "namespace": "n", "flowId": "f"}},
        },
        id="MultipleCondition",
    ),
    pytest.param({"type": CORE + "condition.FlowCondition", "namespace": "n", "flowId": "f"}, id="FlowCondition"),
    pytest.param(
        {"type": CORE + "condition.FlowNamespaceCondition", "namespace": "n", "prefix": True}, id="FlowNsCond"
    ),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.ForEachItem",
            "items": "{{ x }}",
            "batch": {"rows": "{{ n }}"},
            "namespace": "n",
            "flowId": "f",
            "inputs": {"i": "{{ taskrun.items }}"},
            "wait": True,
            "errors": [LOG],
        },
        id="ForEachItem",
    ),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "flow.WaitFor",
            "condition": "{{ x }}",
            "failOnMaxReached": True,
            "checkFrequency": {"interval": "PT1S", "maxIterations": 3, "maxDuration": "PT1H"},
            "tasks": [LOG],
        },
        id="LoopUntil",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "execution.Assert", "conditions": ["{{ x }}"], "errorMessage": "m"}, id="Assert"
    ),
    pytest.param({"id": "a", "type": CORE + "storage.Write", "content": "x", "extension": ".txt"}, id="Write"),
    pytest.param({"id": "a", "type": CORE + "storage.Concat", "files": ["{{ x }}"], "separator": "\n"}, id="Concat"),
    pytest.param({"id": "a", "type": CORE + "storage.Split", "from": "{{ x }}", "bytes": "10MB"}, id="Split"),
    pytest.param({"id": "a", "type": CORE + "storage.Size", "uri": "{{ x }}"}, id="Size"),
    pytest.param({"id": "a", "type": CORE + "storage.Delete", "uri": "{{ x }}", "errorOnMissing": True}, id="Delete"),
    pytest.param({"id": "a", "type": CORE + "storage.Reverse", "from": "{{ x }}", "charset": "UTF-8"}, id="Reverse"),
    pytest.param(
        {
            "id": "a",
            "type": CORE + "storage.FilterItems",
            "from": "{{ x }}",
            "filterCondition": "{{ v }}",
            "filterType": "EXCLUDE",
            "errorOrNullBehavior": "INCLUDE",
        },
        id="FilterItems",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "storage.DeduplicateItems", "from": "{{ x }}", "expr": "{{ k }}"},
        id="DeduplicateItems",
    ),
    pytest.param(
        {"id": "a", "type": COMPRESS + "ArchiveCompress", "algorithm": "ZIP", "from": {"a.txt": "{{ x }}"}},
        id="ArchiveCompress",
    ),
    pytest.param(
        {
            "id": "a",
            "type": COMPRESS + "ArchiveDecompress",
            "algorithm": "TAR",
            "compression": "GZIP",
            "from": "{{ x }}",
        },
        id="ArchiveDecompress",
    ),
    pytest.param(
        {"id": "a", "type": COMPRESS + "FileCompress", "compression": "XZ", "from": "{{ x }}"}, id="FileCompress"
    ),
    pytest.param(
        {"id": "a", "type": COMPRESS + "FileDecompress", "compression": "BZIP2", "from": "{{ x }}"}, id="FileDecompress"
    ),
    pytest.param(
        {
            "id": "a",
            "type": SERDES + "csv.CsvReader",
            "from": "{{ inputs.f }}",
            "fieldSeparator": ";",
            "skipRows": 2,
            "onBadLines": "WARN",
            "onEmptyHeader": "RENAME",
            "charset": "ISO-8859-1",
        },
        id="CsvToIon",
    ),
    pytest.param(
        {
            "id": "a",
            "type": SERDES + "csv.IonToCsv",
            "from": "{{ outputs.q.uri }}",
            "quoteMode": "ALWAYS",
            "header": False,
            "lineDelimiter": "\r\n",
            "dateFormat": "dd/MM/yyyy",
        },
        id="IonToCsv",
    ),
    pytest.param({"id": "a", "type": SERDES + "json.JsonToIon", "from": "{{ x }}", "newLine": False}, id="JsonToIon"),
    pytest.param(
        {"id": "a", "type": SERDES + "json.JsonWriter", "from": "{{ x }}", "shouldKeepAnnotations": True},
        id="IonToJson",
    ),
    pytest.param(
        {
            "id": "a",
            "type": SERDES + "avro.IonToAvro",
            "from": "{{ x }}",
            "schema": "{}",
            "nullValues": ["NA"],
            "strictSchema": True,
        },
        id="IonToAvro",
    ),
    pytest.param(
        {"id": "a", "type": SERDES + "avro.AvroToIon", "from": "{{ x }}", "onBadLines": "SKIP"}, id="AvroToIon"
    ),
    pytest.param(
        {
            "id": "a",
            "type": SERDES + "parquet.IonToParquet",
            "from": "{{ x }}",
            "compressionCodec": "SNAPPY",
            "parquetVersion": "V1",
        },
        id="IonToParquet",
    ),
    pytest.param({"id": "a", "type": SERDES + "parquet.ParquetReader", "from": "{{ x }}"}, id="ParquetToIon"),
    pytest.param(
        {
            "id": "a",
            "type": SERDES + "excel.ExcelToIon",
            "from": "{{ x }}",
            "sheetsTitle": ["s"],
            "valueRender": "FORMATTED_VALUE",
            "skipRows": 1,
        },
        id="ExcelToIon",
    ),
    pytest.param(
        {"id": "a", "type": SERDES + "excel.IonToExcel", "from": {"one": "{{ x }}", "two": "{{ y }}"}, "styles": False},
        id="IonToExcel",
    ),
    # fs ssh/sftp
    pytest.param(
        {
            "id": "a",
            "type": FS + "ssh.Command",
            "host": "h",
            "port": 2222,
            "username": "u",
            "authMethod": "PUBLIC_KEY",
            "privateKey": "{{ secret('K') }}",
            "strictHostKeyChecking": "no",
            "commands": ["ls"],
            "env": {"A": "1"},
        },
        id="ssh.Command",
    ),
    pytest.param({"id": "a", "type": FS + "sftp.Upload", **SFTP, "from": "{{ x }}", "to": "/in/"}, id="sftp.Upload"),
    pytest.param({"id": "a", "type": FS + "sftp.Uploads", **SFTP, "from": ["{{ x }}"], "to": "/in"}, id="sftp.Uploads"),
    pytest.param({"id": "a", "type": FS + "sftp.Download", **SFTP, "from": "/in/a.csv"}, id="sftp.Download"),
    pytest.param(
        {"id": "a", "type": FS + "sftp.Downloads", **SFTP, "from": "/in", "action": "MOVE", "moveDirectory": "/done"},
        id="sftp.Downloads",
    ),
    pytest.param({"id": "a", "type": FS + "sftp.List", **SFTP, "from": "/in", "sort": "NAME_ASC"}, id="sftp.List"),
    pytest.param({"id": "a", "type": FS + "sftp.Delete", **SFTP, "uri": "/in/a.csv"}, id="sftp.Delete"),
    pytest.param({"id": "a", "type": FS + "sftp.Move", **SFTP, "from": "/in/a", "to": "/out/"}, id="sftp.Move"),
    pytest.param(
        {"id": "a", "type": FS + "sftp.Trigger", **SFTP, "from": "/in", "action": "DELETE", "interval": "PT10S"},
        id="sftp.Trigger",
    ),
    # core + namespace files
    pytest.param(
        {"id": "a", "type": CORE + "flow.Loop", "values": ["x"], "concurrencyLimit": 0, "tasks": [LOG]}, id="Loop"
    ),
    pytest.param({"id": "a", "type": CORE + "flow.Loop", "values": "{{ inputs.m }}", "tasks": [LOG]}, id="Loop-expr"),
    pytest.param({"id": "a", "type": CORE + "execution.Resume", "executionId": "{{ inputs.id }}"}, id="Resume"),
    pytest.param(
        {"id": "a", "type": CORE + "log.Fetch", "level": "WARN", "tasksId": ["t"], "executionId": "x"}, id="Fetch"
    ),
    pytest.param({"id": "a", "type": CORE + "state.Get", "name": "n", "taskrunValue": False}, id="StateGet"),
    pytest.param({"id": "a", "type": CORE + "state.Set", "name": "n", "data": {"v": 1}}, id="StateSet"),
    pytest.param({"id": "a", "type": CORE + "state.Delete", "name": "n", "errorOnMissing": True}, id="StateDelete"),
    pytest.param(
        {"id": "a", "type": CORE + "namespace.DownloadFiles", "namespace": "acme", "files": ["*.sql"]},
        id="DownloadFiles",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "namespace.UploadFiles", "namespace": "acme", "files": ["kestra:///a"]},
        id="UploadFiles",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "namespace.DeleteFiles", "namespace": "acme", "files": ["**"]}, id="DeleteFiles"
    ),
]


@pytest.mark.parametrize("raw", VALID)
def test_valid_example_validates(registry: Registry, raw: dict[str, Any]) -> None:
    cls = registry.lookup(raw["type"])
    assert cls is not None
    model = cls.model_validate(raw)
    assert model.type == raw["type"]


REFUSED = {CORE + "flow.Template", "io.kestra.plugin.scripts.nashorn.FileTransform"}
"""Types Kestra removed: known, so that validate says what to use instead, and never valid (INVALID shows it)."""


def test_every_registered_type_has_a_valid_example(registry: Registry) -> None:
    covered = {registry.canonical(p.values[0]["type"]) for p in VALID}
    covered = {registry.canonical(p.values[0]["type"]) for p in VALID} | REFUSED
    assert {cls.type_name for cls in registry.classes()} - covered == set()


@pytest.mark.parametrize("raw", VALID)
def test_unknown_property_is_rejected(registry: Registry, raw: dict[str, Any]) -> None:
    cls = registry.lookup(raw["type"])
    with pytest.raises(ValidationError) as info:
        cls.model_validate({**raw, "notAProperty": 1})
    assert [(e["type"], e["loc"]) for e in info.value.errors()] == [("extra_forbidden", ("notAProperty",))]


RENAMED_CONDITIONS = (
    "DateTimeBetween", "DayWeek", "DayWeekInMonth", "ExecutionFlow", "ExecutionLabels", "ExecutionNamespace",
    "ExecutionOutputs", "ExecutionStatus", "HasRetryAttempt", "Not", "Or", "PublicHoliday", "TimeBetween", "Weekend",
)  # fmt: skip

ALIASES = [
    ("io.kestra.core.tasks.log.Log", CORE + "log.Log"),
    ("io.kestra.core.tasks.debugs.Return", CORE + "debug.Return"),
    ("io.kestra.core.tasks.debugs.Echo", CORE + "debug.Echo"),
    ("io.kestra.core.tasks.executions.Fail", CORE + "execution.Fail"),
    ("io.kestra.core.tasks.executions.Labels", CORE + "execution.Labels"),
    ("io.kestra.core.tasks.flows.Parallel", CORE + "flow.Parallel"),
    ("io.kestra.core.tasks.flows.Sequential", CORE + "flow.Sequential"),
    ("io.kestra.core.tasks.flows.If", CORE + "flow.If"),
    ("io.kestra.core.tasks.flows.Switch", CORE + "flow.Switch"),
    ("io.kestra.core.tasks.flows.EachSequential", CORE + "flow.EachSequential"),
    ("io.kestra.core.tasks.flows.EachParallel", CORE + "flow.EachParallel"),
    ("io.kestra.core.tasks.flows.Dag", CORE + "flow.Dag"),
    ("io.kestra.core.tasks.flows.AllowFailure", CORE + "flow.AllowFailure"),
    ("io.kestra.core.tasks.flows.Pause", CORE + "flow.Pause"),
    ("io.kestra.core.tasks.flows.Subflow", CORE + "flow.Subflow"),
    ("io.kestra.core.tasks.flows.Flow", CORE + "flow.Subflow"),
    ("io.kestra.core.tasks.flows.WorkingDirectory", CORE + "flow.WorkingDirectory"),
    ("io.kestra.core.tasks.flows.Worker", CORE + "flow.WorkingDirectory"),
    ("io.kestra.core.tasks.storages.LocalFiles", CORE + "storage.LocalFiles"),
    ("io.kestra.core.tasks.storages.PurgeExecution", CORE + "storage.PurgeCurrentExecutionFiles"),
    ("io.kestra.plugin.core.storage.PurgeExecution", CORE + "storage.PurgeCurrentExecutionFiles"),
    ("io.kestra.core.models.triggers.types.Schedule", CORE + "trigger.Schedule"),
    ("io.kestra.core.models.triggers.types.Flow", CORE + "trigger.Flow"),
    ("io.kestra.core.models.triggers.types.Webhook", CORE + "trigger.Webhook"),
    ("io.kestra.plugin.fs.http.Request", CORE + "http.Request"),
    ("io.kestra.plugin.fs.http.Download", CORE + "http.Download"),
    (
        "io.kestra.plugin.notifications.slack.SlackIncomingWebhook",
        "io.kestra.plugin.slack.notifications.SlackIncomingWebhook",
    ),
    ("io.kestra.plugin.notifications.mail.MailSend", "io.kestra.plugin.email.MailSend"),
    ("io.kestra.core.models.conditions.types.VariableCondition", CORE + "condition.Expression"),
    ("io.kestra.plugin.core.condition.ExpressionCondition", CORE + "condition.Expression"),
    ("io.kestra.core.models.conditions.types.MultipleCondition", CORE + "condition.MultipleCondition"),
    ("io.kestra.core.models.conditions.types.FlowCondition", CORE + "condition.FlowCondition"),
    ("io.kestra.core.models.conditions.types.FlowNamespaceCondition", CORE + "condition.FlowNamespaceCondition"),
] + [
    (f"{prefix}{name}Condition", f"{CORE}condition.{name}")
    for name in RENAMED_CONDITIONS
    for prefix in ("io.kestra.core.models.conditions.types.", CORE + "condition.")
]


@pytest.mark.parametrize(("alias", "canonical"), [pytest.param(a, c, id=a) for a, c in ALIASES])
def test_alias_resolves_case_insensitively(registry: Registry, alias: str, canonical: str) -> None:
    for spelling in (alias, alias.lower(), alias.upper()):
        assert registry.canonical(spelling) == canonical


def test_legacy_script_tasks_are_classes_not_aliases(registry: Registry) -> None:
    assert registry.canonical("io.kestra.core.tasks.scripts.Bash") == "io.kestra.core.tasks.scripts.Bash"
    assert registry.canonical("io.kestra.core.tasks.scripts.Python") == "io.kestra.core.tasks.scripts.Python"
    assert registry.lookup("io.kestra.core.tasks.scripts.Bash") is not registry.lookup(
        "io.kestra.plugin.scripts.shell.Commands"
    )


REQUIRED = [
    pytest.param({"id": "a", "type": CORE + "log.Log"}, "message", id="Log.message"),
    pytest.param({"id": "a", "type": CORE + "flow.Sequential"}, "tasks", id="Sequential.tasks"),
    pytest.param({"id": "a", "type": CORE + "flow.Parallel"}, "tasks", id="Parallel.tasks"),
    pytest.param({"id": "a", "type": CORE + "flow.If", "then": [LOG]}, "condition", id="If.condition"),
    pytest.param({"id": "a", "type": CORE + "flow.If", "condition": "x"}, "then", id="If.then"),
    pytest.param({"id": "a", "type": CORE + "flow.Switch", "cases": {}}, "value", id="Switch.value"),
    pytest.param({"id": "a", "type": CORE + "flow.ForEach", "tasks": [LOG]}, "values", id="ForEach.values"),
    pytest.param({"id": "a", "type": CORE + "flow.EachParallel", "tasks": [LOG]}, "value", id="EachParallel.value"),
    pytest.param({"id": "a", "type": CORE + "flow.Subflow", "namespace": "n"}, "flowId", id="Subflow.flowId"),
    pytest.param({"id": "a", "type": CORE + "flow.Subflow", "flowId": "f"}, "namespace", id="Subflow.namespace"),
    pytest.param({"id": "a", "type": CORE + "flow.Sleep"}, "duration", id="Sleep.duration"),
    pytest.param({"id": "a", "type": CORE + "flow.Dag"}, "tasks", id="Dag.tasks"),
    pytest.param({"id": "a", "type": CORE + "execution.Labels"}, "labels", id="Labels.labels"),
    pytest.param({"id": "a", "type": CORE + "http.Request"}, "uri", id="Request.uri"),
    pytest.param({"id": "a", "type": CORE + "kv.Set", "key": "k"}, "value", id="KVSet.value"),
    pytest.param({"id": "a", "type": CORE + "kv.Get"}, "key", id="KVGet.key"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.scripts.shell.Commands"}, "commands", id="shell.commands"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.scripts.python.Script"}, "script", id="python.script"),
    pytest.param({"id": "a", "type": "io.kestra.core.tasks.scripts.Bash"}, "commands", id="Bash.commands"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.jdbc.sqlite.Query"}, "sql", id="sqlite.sql"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.jdbc.duckdb.Queries"}, "sql", id="duckdb.sql"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.dbt.cli.DbtCLI"}, "commands", id="DbtCLI.commands"),
    pytest.param({"id": "a", "type": "io.kestra.plugin.git.Clone"}, "url", id="Clone.url"),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.slack.notifications.SlackIncomingWebhook"}, "url", id="Slack.url"
    ),
    pytest.param({"id": "t", "type": CORE + "trigger.Schedule"}, "cron", id="Schedule.cron"),
    pytest.param({"id": "t", "type": CORE + "trigger.Webhook"}, "key", id="Webhook.key"),
    pytest.param({"type": CORE + "condition.ExecutionFlow", "namespace": "n"}, "flowId", id="ExecutionFlow.flowId"),
    pytest.param({"type": CORE + "condition.Expression"}, "expression", id="Expression.expression"),
    pytest.param({"type": CORE + "condition.DayWeek"}, "dayOfWeek", id="DayWeek.dayOfWeek"),
    pytest.param({"type": CORE + "condition.Not"}, "conditions", id="Not.conditions"),
    pytest.param({"type": CORE + "condition.MultipleCondition", "conditions": {"a": {}}}, "id", id="Multiple.id"),
    pytest.param({"type": "io.kestra.plugin.core.trigger.Schedule", "cron": "@daily"}, "id", id="Trigger.id"),
]


@pytest.mark.parametrize(("raw", "field"), REQUIRED)
def test_required_property_is_required(registry: Registry, raw: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        registry.lookup(raw["type"]).model_validate(raw)
    assert ("missing", (field,)) in [(e["type"], e["loc"]) for e in info.value.errors()]


INVALID = [
    # fs ssh/sftp
    pytest.param({"id": "a", "type": FS + "ssh.Command", "host": "h"}, "commands", id="ssh-no-commands"),
    pytest.param(
        {"id": "a", "type": FS + "sftp.Trigger", **SFTP, "from": "/in", "action": "MOVE"},
        "moveDirectory",
        id="sftp-move-no-folder",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.Sequential", "tasks": []}, "at least 1", id="empty-tasks"),
    pytest.param(
        {"id": "a", "type": CORE + "flow.Parallel", "tasks": [LOG], "concurrent": -1},
        "greater than or equal to 0",
        id="neg",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.Sleep", "duration": "5 minutes"}, "ISO-8601", id="bad-duration"),
    pytest.param({"id": "a", "type": CORE + "flow.Sleep", "duration": "{{ inputs.d }}"}, None, id="dyn-duration-ok"),
    pytest.param({"id": "a", "type": CORE + "execution.Exit", "state": "DONE"}, "SUCCESS", id="exit-state"),
    pytest.param({"id": "a", "type": CORE + "http.Request", "uri": "u", "method": "FETCH"}, "GET", id="method"),
    pytest.param({"id": "a", "type": CORE + "http.Request", "uri": "u", "options": {"x": 1}}, "Extra", id="options"),
    pytest.param({"id": "a", "type": CORE + "kv.Set", "key": "k", "value": 1, "kvType": "TEXT"}, "JSON", id="kvtype"),
    pytest.param(
        {"id": "a", "type": CORE + "flow.Subflow", "namespace": "n", "flowId": "f", "revision": 0},
        "greater than or equal to 1",
        id="rev",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "flow.Pause", "onResume": [{"id": "x", "type": "NOPE"}]}, "NOPE", id="onResume"
    ),
    pytest.param(
        {"id": "a", "type": CORE + "flow.Pause", "onResume": [{"id": "n", "type": "INT", "defaults": "x"}]},
        "defaults does not fit type INT",
        id="onResume-default",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.jdbc.sqlite.Query", "sql": "s", "fetchType": "ALL"}, "FETCH", id="fetch"
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.scripts.shell.Commands", "commands": ["x"], "docker": {"imag": "x"}},
        "Extra",
        id="docker-typo",
    ),
    pytest.param({"type": CORE + "condition.ExecutionStatus", "in": ["DONE"]}, "SUCCESS", id="state-name"),
    pytest.param({"type": CORE + "condition.DayWeek", "dayOfWeek": "monday"}, "MONDAY", id="day-case"),
    pytest.param({"id": "t", "type": CORE + "trigger.Webhook", "key": ""}, "at least 1", id="empty-key"),
    pytest.param(
        {"id": "t", "type": CORE + "trigger.Schedule", "cron": "@daily", "recoverMissedSchedules": "SOME"},
        "ALL",
        id="recover",
    ),
    pytest.param(
        {"id": "a", "type": CORE + "flow.ForEach", "values": [1], "tasks": [LOG], "concurrencyLimit": -1},
        "greater than or equal to 0",
        id="limit",
    ),
    pytest.param({"id": "a b", "type": CORE + "log.Log", "message": "m"}, "pattern", id="task-id"),
    # core + namespace files
    pytest.param(
        {"id": "a", "type": CORE + "flow.Template", "namespace": "acme", "templateId": "t"},
        "templates were deprecated in Kestra 0.11",
        id="Template",
    ),
    pytest.param(
        {"id": "a", "type": "io.kestra.plugin.scripts.nashorn.FileTransform", "from": "x", "script": "s"},
        "Nashorn",
        id="FileTransform",
    ),
    pytest.param({"id": "a", "type": CORE + "flow.Loop", "values": ["x"], "tasks": []}, "at least 1", id="Loop-empty"),
]


@pytest.mark.parametrize(("raw", "message"), INVALID)
def test_invalid_values(registry: Registry, raw: dict[str, Any], message: str | None) -> None:
    cls = registry.lookup(raw["type"])
    if message is None:
        cls.model_validate(raw)
        return
    with pytest.raises(ValidationError, match=message):
        cls.model_validate(raw)


def _cron_message(expression: str, with_seconds: bool = False) -> str:
    with pytest.raises(CronError) as info:
        parse_cron(expression, with_seconds)
    return str(info.value)


@pytest.mark.parametrize(
    ("cron", "with_seconds"),
    [
        pytest.param("0 25 * * *", False, id="hour-out-of-range"),
        pytest.param("*/0 * * * *", False, id="zero-step"),
        pytest.param("0 0 * * * *", False, id="six-fields-without-withSeconds"),
        pytest.param("0 0 * *", False, id="four-fields"),
        pytest.param("0 0 * * *", True, id="five-fields-with-withSeconds"),
        pytest.param("0 0 * * funday", False, id="bad-day-name"),
    ],
)
def test_schedule_bad_cron_reports_the_cron_error(registry: Registry, cron: str, with_seconds: bool) -> None:
    raw = {"id": "t", "type": CORE + "trigger.Schedule", "cron": cron, "withSeconds": with_seconds}
    with pytest.raises(ValidationError) as info:
        registry.lookup(raw["type"]).model_validate(raw)
    assert _cron_message(cron, with_seconds) in str(info.value)


@pytest.mark.parametrize(
    ("cron", "with_seconds"),
    [
        pytest.param("*/15 * * * *", False, id="every-15"),
        pytest.param("0 0 9 * * MON", True, id="with-seconds"),
        pytest.param("@hourly", False, id="nickname"),
        pytest.param("0 0 1 JAN 0,7", False, id="names-and-sunday"),
    ],
)
def test_schedule_good_cron(registry: Registry, cron: str, with_seconds: bool) -> None:
    raw = {"id": "t", "type": CORE + "trigger.Schedule", "cron": cron, "withSeconds": with_seconds}
    assert registry.lookup(raw["type"]).model_validate(raw).cron == cron


def test_schedule_bad_timezone_reports_the_timezone_error(registry: Registry) -> None:
    raw = {"id": "t", "type": CORE + "trigger.Schedule", "cron": "@daily", "timezone": "Mars/Olympus"}
    with pytest.raises(ValueError, match="unknown timezone") as expected:
        parse_timezone("Mars/Olympus")
    with pytest.raises(ValidationError) as info:
        registry.lookup(raw["type"]).model_validate(raw)
    assert str(expected.value) in str(info.value)


def test_schedule_legacy_schedule_conditions_are_a_condition_slot(registry: Registry) -> None:
    raw = {
        "id": "t",
        "type": "io.kestra.core.models.triggers.types.Schedule",
        "cron": "@daily",
        "scheduleConditions": [{"type": CORE + "condition.Weekend"}],
        "conditions": [{"type": CORE + "condition.Weekend"}],
    }
    cls = registry.lookup(raw["type"])
    cls.model_validate(raw)
    assert sorted(cls.nested_plugin_paths(raw)) == [
        (("conditions", 0), "condition"),
        (("scheduleConditions", 0), "condition"),
    ]


def _dag(*nodes: tuple[str, list[str] | None]) -> dict[str, Any]:
    tasks = [{"task": {**LOG, "id": i}, **({"dependsOn": d} if d is not None else {})} for i, d in nodes]
    return {"id": "dag", "type": CORE + "flow.Dag", "tasks": tasks, "errors": [LOG]}


def test_dag_nested_plugin_paths(registry: Registry) -> None:
    raw = _dag(("a", None), ("b", ["a"]), ("c", ["a", "b"]))
    paths = list(registry.lookup(raw["type"]).nested_plugin_paths(raw))
    assert sorted(paths, key=str) == sorted(
        [
            (("errors", 0), "task"),
            (("tasks", 0, "task"), "task"),
            (("tasks", 1, "task"), "task"),
            (("tasks", 2, "task"), "task"),
        ],
        key=str,
    )


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(_dag(("a", ["zzz"])), "unknown task", id="missing-dependency"),
        pytest.param(_dag(("a", ["b"]), ("b", ["a"])), "cyclic dependency: a -> b -> a", id="cycle"),
        pytest.param(_dag(("a", ["a"])), "cyclic dependency: a -> a", id="self-loop"),
        pytest.param({**_dag(("a", None)), "tasks": [{"task": LOG, "after": []}]}, "Extra", id="bad-node-key"),
        pytest.param({**_dag(("a", None)), "tasks": [{"dependsOn": []}]}, "task", id="node-without-task"),
    ],
)
def test_dag_rejects_bad_graphs(registry: Registry, raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        registry.lookup(raw["type"]).model_validate(raw)


def test_switch_cases_paths(registry: Registry) -> None:
    raw = {
        "id": "s",
        "type": CORE + "flow.Switch",
        "value": "{{ inputs.x }}",
        "cases": {"A": [LOG, LOG], "B": [LOG], 1: [LOG]},
        "defaults": [LOG],
        "finally": [LOG],
    }
    cls = registry.lookup(raw["type"])
    model = cls.model_validate(raw)
    assert set(model.cases) == {"A", "B", "1"}  # YAML int keys become the strings Kestra matches against
    assert sorted(cls.nested_plugin_paths(raw), key=str) == sorted(
        [
            (("cases", "A", 0), "task"),
            (("cases", "A", 1), "task"),
            (("cases", "B", 0), "task"),
            (("cases", 1, 0), "task"),
            (("defaults", 0), "task"),
            (("finally", 0), "task"),
        ],
        key=str,
    )


def test_switch_case_must_be_a_list(registry: Registry) -> None:
    raw = {"id": "s", "type": CORE + "flow.Switch", "value": "x", "cases": {"A": LOG}}
    with pytest.raises(ValidationError, match="case 'A' must be a list of tasks"):
        registry.lookup(raw["type"]).model_validate(raw)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {"id": "i", "type": CORE + "flow.If", "condition": "x", "then": [LOG], "else": [LOG], "errors": [LOG]},
            [(("else", 0), "task"), (("errors", 0), "task"), (("then", 0), "task")],
            id="If",
        ),
        pytest.param(
            {"id": "p", "type": CORE + "flow.Pause", "tasks": [LOG]}, [(("tasks", 0), "task")], id="Pause-tasks"
        ),
        pytest.param(
            {
                "id": "s",
                "type": "io.kestra.plugin.scripts.python.Script",
                "script": "x",
                "taskRunner": {"type": CORE + "runner.Process"},
            },
            [(("taskRunner",), "runner")],
            id="script-taskRunner",
        ),
        pytest.param(
            {"type": CORE + "condition.Or", "conditions": [{"type": "x"}, {"type": "y"}]},
            [(("conditions", 0), "condition"), (("conditions", 1), "condition")],
            id="Or",
        ),
        pytest.param(
            {"id": "m", "type": CORE + "condition.MultipleCondition", "conditions": {"a": {}, "b": {}}},
            [(("conditions", "a"), "condition"), (("conditions", "b"), "condition")],
            id="MultipleCondition",
        ),
        pytest.param(
            {"id": "w", "type": CORE + "flow.WorkingDirectory", "tasks": [LOG], "finally": [LOG]},
            [(("finally", 0), "task"), (("tasks", 0), "task")],
            id="WorkingDirectory",
        ),
    ],
)
def test_nested_plugin_paths(registry: Registry, raw: dict[str, Any], expected: list[Any]) -> None:
    assert sorted(registry.lookup(raw["type"]).nested_plugin_paths(raw), key=str) == sorted(expected, key=str)


def test_keyword_properties_use_their_yaml_names(registry: Registry) -> None:
    if_task = registry.lookup(CORE + "flow.If").model_validate(
        {"id": "i", "type": CORE + "flow.If", "condition": "x", "then": [LOG], "else": [LOG]}
    )
    assert if_task.model_dump(by_alias=True, exclude_none=True)["else"] == [LOG]
    status = registry.lookup(CORE + "condition.ExecutionStatus").model_validate(
        {"type": CORE + "condition.ExecutionStatus", "in": ["SUCCESS"]}
    )
    assert status.model_dump(by_alias=True)["in"] == ["SUCCESS"]
    mail = registry.lookup("io.kestra.plugin.email.MailSend").model_validate(
        {"id": "m", "type": "io.kestra.plugin.email.MailSend", "from": "a@b.c"}
    )
    assert mail.model_dump(by_alias=True)["from"] == "a@b.c"


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        pytest.param(
            {"id": "a", "type": CORE + "flow.ForEach", "values": "{{ inputs.list }}", "tasks": [LOG]}, "values"
        ),
        pytest.param({"id": "a", "type": CORE + "log.Log", "message": "m", "level": "{{ inputs.level }}"}, "level"),
        pytest.param({"id": "a", "type": CORE + "kv.Set", "key": "k", "value": 1, "ttl": "{{ inputs.ttl }}"}, "ttl"),
        pytest.param({"id": "a", "type": CORE + "flow.Pause", "behavior": "{{ inputs.b }}"}, "behavior"),
        pytest.param(
            {"id": "a", "type": "io.kestra.plugin.scripts.shell.Commands", "commands": "{{ inputs.cmds }}"}, "commands"
        ),
    ],
)
def test_dynamic_properties_accept_expressions(registry: Registry, raw: dict[str, Any], field: str) -> None:
    model = registry.lookup(raw["type"]).model_validate(raw)
    assert getattr(model, field) == raw[field]


def test_dynamic_property_rejects_a_plain_string(registry: Registry) -> None:
    raw = {"id": "a", "type": CORE + "kv.Set", "key": "k", "value": 1, "overwrite": "maybe"}
    with pytest.raises(ValidationError):
        registry.lookup(raw["type"]).model_validate(raw)


def test_inert_properties_are_declared_properties(registry: Registry) -> None:
    for cls in registry.classes():
        names = {f.alias or n for n, f in cls.model_fields.items()}
        assert set(cls.inert) <= names, cls.type_name
        parent = next(base for base in cls.__mro__[1:] if "inert" in dir(base))  # skip property mixins
        assert parent.inert.keys() <= cls.inert.keys() or cls.inert == {}, cls.type_name


@pytest.mark.parametrize(
    ("type_name", "prop"),
    [
        ("io.kestra.plugin.scripts.python.Script", "containerImage"),
        ("io.kestra.plugin.scripts.shell.Commands", "docker"),
        ("io.kestra.plugin.scripts.runner.docker.Docker", "pullPolicy"),
        ("io.kestra.core.tasks.scripts.Bash", "dockerOptions"),
        (CORE + "trigger.Schedule", "backfill"),
        (CORE + "flow.WorkingDirectory", "cache"),
        (CORE + "log.Log", "logToFile"),
    ],
)
def test_inert_marks(registry: Registry, type_name: str, prop: str) -> None:
    assert registry.lookup(type_name).inert[prop]


def test_flow_schema_holds_every_class_with_descriptions(registry: Registry) -> None:
    schema = flow_schema(registry)
    defs = schema["$defs"]
    log = defs[Log.__name__]
    assert log["additionalProperties"] is False
    assert log["properties"]["message"]["description"].startswith("The message")
    assert set(log["required"]) == {"type", "id", "message"}
    inherited = set(FlowableTask.model_fields) | set(Trigger.model_fields) | set(Condition.model_fields)
    undocumented = [
        (cls.type_name, name)
        for cls in registry.classes()
        for name, field in cls.model_fields.items()
        if name not in inherited and field.description is None
    ]
    assert undocumented == []


def test_dag_checks_edges_of_tasks_already_validated(registry: Registry) -> None:
    # runner.validate replaces each nested task by its validated model before validating the Dag itself.
    log = registry.lookup(LOG["type"])
    raw = _dag(("a", None), ("b", ["a"]))
    for node in raw["tasks"]:
        node["task"] = log.model_validate(node["task"])
    registry.lookup(raw["type"]).model_validate(raw)
    raw["tasks"][0]["dependsOn"] = ["zzz"]
    with pytest.raises(ValidationError, match="task 'a' depends on unknown task"):
        registry.lookup(raw["type"]).model_validate(raw)
