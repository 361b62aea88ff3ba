"""The Kestra corpus, run: every corpus flow that uses only supported types and needs nothing outside this machine.

`RUNS` names each such file and the final state its author meant (Kestra's own test flows often fail on purpose);
`CANNOT_RUN` names every other supported-type file and why it cannot run here (external hosts, cloud credentials,
Docker, packages not installed, a human to resume a Pause, flows that are not in the corpus …). Together they cover
every corpus file whose types are all supported (tests/test_corpus.py decides that), which the first test checks.

The selected files are committed to one git repository in a temporary folder and synced as one source with no
namespace prefix (a second runtime holds the one file whose `namespace.id` clashes with another), then each runs
with its defaults or the documented `INPUTS`. Kestra blueprints carry an `extend:` block of site metadata that
Kestra's own parser refuses (see test_corpus.BLUEPRINT_EXTEND); it is dropped before committing, nothing else is
changed. Local set-up a flow's author expects is done here: the secrets `secrets.yaml` and `webhook-secret-key.yaml`
read (SECRET_* variables) and the KV value `kv.yaml` reads.
"""

from __future__ import annotations

import base64
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from runtime import Runtime
from test_corpus import CORPUS, EXCEPTIONS, corpus_rows, residual_errors, supported

from gitsync.executions.manager import RunError
from runner.inputs import UploadedFile

K = "kestra/core__src__test__resources__flows__valids__"
ZC = "data-engineering-zoomcamp/"
RS = "redunisol-kestra/kestra__automations__"
TERMINAL = ("SUCCESS", "WARNING", "FAILED", "KILLED", "CANCELLED", "RETRIED")
WAIT_SECONDS = 45  # every execution starts at once; the slowest (a 15 s Sleep, retries) end well within this

# file -> the final state its author meant.
RUNS: dict[str, str] = {
    # Kestra's own test flows (core/src/test/resources/flows/valids); states as Kestra's tests assert them.
    K + "allow-failure.yaml": "FAILED",  # with `crash` set the Switch reaches a Fail outside the AllowFailure
    K + "disable-error.yaml": "FAILED",
    K + "disable-flowable.yaml": "SUCCESS",
    K + "disable-simple.yaml": "SUCCESS",
    K + "each-null.yaml": "FAILED",  # EachSequentialTest.eachNull: "Found '1' null values on Each"
    K + "inputs-small-files.yaml": "SUCCESS",  # a FILE input, given as an upload (gitsync run --input f=@path)
    K + "inputs.yaml": "SUCCESS",
    K + "restart_with_inputs.yaml": "SUCCESS",
    K + "each-object-in-list.yaml": "SUCCESS",
    K + "each-object.yaml": "SUCCESS",
    K + "each-parallel-pause.yml": "SUCCESS",
    K + "each-parallel-subflow-notfound.yml": "FAILED",  # the subflows do not exist, on purpose
    K + "each-parallel.yaml": "SUCCESS",
    K + "each-sequential-nested.yaml": "SUCCESS",
    K + "each-sequential.yaml": "WARNING",  # EachSequentialTest.sequential: AllowFailure around a failing Log
    K + "each-switch.yaml": "SUCCESS",
    K + "fail-on-condition.yaml": "FAILED",
    K + "fail-on-switch.yaml": "FAILED",
    K + "failed-first.yaml": "FAILED",
    K + "flow-concurrency-fail.yml": "SUCCESS",
    K + "flow-concurrency-queue.yml": "SUCCESS",
    K + "flow-trigger-preconditions-flow-b.yaml": "SUCCESS",
    K + "flow-trigger-preconditions-flow-listen.yaml": "SUCCESS",
    K + "flow-with-array-outputs.yml": "SUCCESS",
    K + "flow-with-outputs-failed.yml": "FAILED",  # FlowOutputTest.shouldGetFailExecutionForFlowWithInvalidOutputs
    K + "flowable-with-parent-fail.yaml": "FAILED",
    K + "for-each-item-subflow.yaml": "SUCCESS",
    K + "for-each-item.yaml": "SUCCESS",
    K + "for-each-item-outputs.yaml": "SUCCESS",
    K + "waitfor-max-iterations.yaml": "FAILED",  # failOnMaxReached: the condition never holds
    K + "waitfor-no-success.yaml": "SUCCESS",
    K + "foreach-concurrent-parallel.yaml": "SUCCESS",
    K + "foreach-concurrent.yaml": "SUCCESS",
    K + "full.yaml": "SUCCESS",
    K + "if.yaml": "SUCCESS",
    K + "input-log-secret.yaml": "SUCCESS",
    K + "kv.yaml": "SUCCESS",
    K + "log-to-file.yaml": "SUCCESS",
    K + "logs.yaml": "SUCCESS",
    K + "minimal-bis.yaml": "SUCCESS",
    K + "minimal.yaml": "SUCCESS",
    K + "output-values.yml": "SUCCESS",
    K + "pause-delay.yaml": "SUCCESS",
    K + "pause-timeout.yaml": "FAILED",  # PauseTest: nobody resumes; after `timeout: PT1S` the Pause task fails
    K + "primitive-labels-flow.yml": "SUCCESS",
    K + "restart-each.yaml": "FAILED",  # failed=FIRST renders the undefined `ko`, on purpose
    K + "restart_always_failed.yaml": "FAILED",
    K + "restart_pause_last_failed.yaml": "FAILED",  # first run: taskrun.attemptsCount is 0, so `c` renders `ko`
    K + "retry-failed-task-duration.yml": "FAILED",
    K + "retry-failed.yaml": "FAILED",
    K + "retry-flowable-child.yaml": "FAILED",
    K + "retry-flowable-nested-child.yaml": "FAILED",
    K + "retry-flowable.yaml": "FAILED",
    K + "retry-new-execution-flow-attempts.yml": "RETRIED",  # flow retry CREATE_NEW_EXECUTION: FAILED -> RETRIED
    K + "retry-random.yaml": "FAILED",
    K + "secrets.yaml": "SUCCESS",
    K + "sequential-with-local-errors.yaml": "FAILED",
    K + "sequential.yaml": "SUCCESS",
    K + "sleep.yml": "SUCCESS",
    K + "task-allow-failure-runnable.yml": "WARNING",
    K + "task-allow-warning-flowable.yml": "SUCCESS",
    K + "trigger-flow-listener-invalid.yaml": "SUCCESS",
    K + "trigger-flow-listener-namespace-condition.yaml": "SUCCESS",
    K + "trigger-flow-listener.yaml": "SUCCESS",
    K + "trigger-flow.yaml": "SUCCESS",
    K + "trigger-multiplecondition-failed.yaml": "SUCCESS",
    K + "trigger-multiplecondition-flow-a.yaml": "SUCCESS",
    K + "trigger-multiplecondition-flow-c.yaml": "FAILED",  # a Fail task, on purpose
    K + "trigger-multiplecondition-flow-d.yaml": "SUCCESS",
    K + "trigger-multiplecondition-listener.yaml": "SUCCESS",
    K + "variables-invalid.yaml": "FAILED",  # switches on the undefined inputs.invalid, on purpose
    K + "webhook-secret-key.yaml": "SUCCESS",
    K + "webhook-with-condition.yaml": "SUCCESS",
    K + "working-directory-cache.yml": "SUCCESS",
    K + "working-directory-each.yaml": "SUCCESS",
    K + "working-directory-outputs.yml": "SUCCESS",
    K + "working-directory-taskrun.yml": "SUCCESS",
    K + "working-directory.yaml": "SUCCESS",
    # Kestra blueprints (`extend:` dropped).
    "blueprints/flows__parallel-files.yaml": "SUCCESS",
    "blueprints/flows__parametrized-flow-with-multiple-schedules.yaml": "SUCCESS",
    "blueprints/flows__parse-twitter-json-payload.yaml": "SUCCESS",
    "blueprints/flows__retries.yaml": "SUCCESS",  # succeeds on the 5th attempt (see ATTEMPTS)
    "blueprints/flows__schedule-condition-dayweekinmonth.yaml": "SUCCESS",
    "blueprints/flows__schedule-condition-publicholiday.yaml": "SUCCESS",
    "blueprints/flows__schedule-condition-weekend.yaml": "SUCCESS",
    "blueprints/flows__shell-scripts.yaml": "SUCCESS",
    # Users' repositories.
    "examples/blueprints_published__45_parametrizedFlowWithMultipleSchedules.yml": "SUCCESS",
    "examples/blueprints_published__57_conditionalBranching.yml": "SUCCESS",
    "examples/deploy__marketing__flow2.yml": "SUCCESS",
    "examples/deploy__marketing__flow3.yml": "SUCCESS",
    "examples/flows__core__switch.yml": "SUCCESS",
    "examples/redis__jqTest.yml": "SUCCESS",
    "examples/triggers__webhookTrigger.yml": "SUCCESS",
    ZC + "02-workflow-orchestration__flows__01_hello_world.yaml": "SUCCESS",
    ZC + "02-workflow-orchestration__flows__06_gcp_kv.yaml": "SUCCESS",
    ZC + "cohorts__2025__02-workflow-orchestration__flows__04_gcp_kv.yaml": "SUCCESS",
    "kestra-playground/batch-groups__affiliate__flows__sample_affiliate_partner_batch.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-notification-affiliate__sample_affiliate_partner_batch.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-notification__demo_batch_failure.yaml": "FAILED",  # simulated failure
    "kestra-playground/kestra__flows-notification__demo_batch_success.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-notification__sample_sales_batch.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-worker-routing__verify_batch_group_broadcast.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-worker-routing__verify_gcp_worker_routing.yaml": "SUCCESS",
    "kestra-playground/kestra__flows-worker-routing__verify_gke_node_worker_routing.yaml": "SUCCESS",
    "kestra_prod/flows__demo__flow_downstream_c.yml": "SUCCESS",
    "kestra_prod/flows__demo__flow_upstream_b.yml": "SUCCESS",
    "kestra_prod/flows__demo__hello_world.yml": "SUCCESS",
    "kestra_prod/flows__demo__pebble-date-trigger.yml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__email_campaign_trigger.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__feature_feedback_aggregator.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__gmail_processing.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__hello-world.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__invoice_processing.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__order_fulfillment.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__payroll_notification.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__quarterly_financial_report.yaml": "SUCCESS",
    "kestra_enterprise_resources/resources__flows__system_health_check.yaml": "SUCCESS",
    "lighthouse-kestra/flows__maintenance__graphify_docs.yaml": "SUCCESS",
    "lighthouse-kestra/flows__serve__deepdive.yaml": "SUCCESS",
    "dapper-cluster-kestra-flows/docs__example-subflow.yaml": "SUCCESS",
    # core + namespace files
    K + "state.yaml": "SUCCESS",  # the legacy state store, per taskrun.value and not
    K + "get-log.yaml": "SUCCESS",  # log.Fetch of its own execution's lines
    K + "get-log-executionid.yaml": "SUCCESS",
    # Redis, Ansible and Kestra's git sync tasks (issue #15 points 8 and 10): the sync tasks log why they do nothing
    "kestra-automation/ops__kestra-bootstrap.yml": "SUCCESS",
    "mlops-kestra-workflow/_flows__sync_from_git.yml": "SUCCESS",
    # notifications
    "kestra_prod/flows__shiny_rocks__slack_failure_alert.yml": "SUCCESS",  # its one task (SlackExecution) is disabled
}

# Inputs for flows whose required inputs have no defaults (the minimal values that take the documented path).
INPUTS: dict[str, dict[str, Any]] = {
    # FILE inputs are uploads, as `gitsync run --input f=@path` and the API's multipart form give them
    K + "inputs-small-files.yaml": {"f": UploadedFile("small.txt", data=b"hello")},
    K + "inputs.yaml": {
        "string": "myString",
        "enum": "ENUM_VALUE",
        "int": "42",
        "float": "42.42",
        "instant": "2019-10-06T18:27:49Z",
        "file": UploadedFile("application.yml", data=b"key: value\n"),
        "secret": "a SECRET input value no other flow prints",  # masked everywhere once given
        "array": "[1, 2, 3]",
    },
    K + "restart_with_inputs.yaml": {
        "string": "myString",
        "int": "42",
        "float": "42.42",
        "instant": "2019-10-06T18:27:49Z",
        "file": UploadedFile("data.csv", data=b"a,b\n1,2\n"),
    },
    K + "allow-failure.yaml": {"crash": "1"},
    K + "fail-on-condition.yaml": {"param": "fail"},
    K + "fail-on-switch.yaml": {"param": "notexist"},
    K + "for-each-item-subflow.yaml": {"items": "one item"},
    K + "for-each-item.yaml": {"file": UploadedFile("items.txt", data=b"a\nb\nc\nd\ne\n"), "batch": 2},
    K + "for-each-item-outputs.yaml": {"file": UploadedFile("items.txt", data=b"1\n2\n3\n4\n5\n")},
    K + "if.yaml": {"if1": True, "if2": False, "if3": True},
    K + "primitive-labels-flow.yml": {"intLabel": 42, "floatLabel": 3.5, "boolLabel": True},
    K + "restart-each.yaml": {"failed": "FIRST"},
    K + "trigger-flow-listener-invalid.yaml": {"from-parent": "parent"},
    K + "trigger-flow-listener-namespace-condition.yaml": {"from-parent": "parent"},
    K + "trigger-flow-listener.yaml": {"from-parent": "parent"},
    K + "working-directory.yaml": {"failed": "false"},
    # core + namespace files
    K + "state.yaml": {"state": "each"},
    "examples/flows__core__switch.yml": {"string": "B"},
    "kestra_enterprise_resources/resources__flows__gmail_processing.yaml": {"email_value": "ada@example.com"},
    "kestra_enterprise_resources/resources__flows__invoice_processing.yaml": {
        "invoice_number": "INV-1",
        "amount": 120.5,
        "vendor_name": "ACME",
    },
    "kestra_enterprise_resources/resources__flows__order_fulfillment.yaml": {
        "order_id": "O-1",
        "customer_id": "C-1",
        "items_count": 2,
    },
}

# Task states (id, or id[value] in loops) that must hold besides the final state: what the author meant them to do.
TASK_STATES: dict[str, dict[str, str]] = {
    K + "each-parallel-pause.yml": {"log[toto]": "SUCCESS", "log[tata]": "SUCCESS", "log[titi]": "SUCCESS"},
    K + "restart_pause_last_failed.yaml": {"a": "SUCCESS", "b": "SUCCESS", "c": "FAILED"},
    K + "pause-timeout.yaml": {"pause": "FAILED"},
    K + "allow-failure.yaml": {  # AllowFailureTest.control: the allowed task is recorded WARNING, its child FAILED
        "first": "WARNING",
        "1-1-allow-failure": "WARNING",
        "1-1-1_seq": "FAILED",
        "ko": "FAILED",
        "local-error": "SUCCESS",
        "1-2-todo": "SUCCESS",
        "switch": "FAILED",
        "crash": "FAILED",
    },
    K + "disable-error.yaml": {"t2": "SUCCESS", "t4": "SUCCESS"},
    K + "task-allow-failure-runnable.yml": {"fail": "WARNING", "log": "SUCCESS"},
    K + "task-allow-warning-flowable.yml": {"seq": "SUCCESS", "log-allowed": "SUCCESS"},
    K + "sequential-with-local-errors.yaml": {"t2-t1": "FAILED"},
    "examples/flows__core__switch.yml": {"b": "SUCCESS"},
    "kestra-playground/kestra__flows-notification__demo_batch_failure.yaml": {"publish_report": "FAILED"},
}
# Task outputs that must hold: file -> task id -> outputs.
TASK_OUTPUTS: dict[str, dict[str, dict[str, Any]]] = {
    K + "kv.yaml": {"get": {"value": "kv-field"}, "getWithArgs": {"value": "kv-field"}},
    K + "secrets.yaml": {"get-secret": {"value": "secretValue"}},
    K + "each-switch.yaml": {"2-1-1_switch-number-2": {"value": "2 b"}},
    "examples/flows__core__switch.yml": {"b": {"value": "The input is B"}},
}
# Attempts of a task: file -> (task id, number of attempts, state of the last).
ATTEMPTS: dict[str, tuple[str, int, str]] = {
    # `if [ taskrun.attemptsCount -eq 4 ]`: the blueprint says it fails 4 times and succeeds on the 5th attempt.
    "blueprints/flows__retries.yaml": ("fail_4_times", 5, "SUCCESS"),
    # RetryCaseTest.retryFlowable*: a flowable's `retry` retries its failing descendants (maxAttempt: 3).
    K + "retry-flowable.yaml": ("child", 3, "FAILED"),
    K + "retry-flowable-child.yaml": ("child", 3, "FAILED"),
    K + "retry-flowable-nested-child.yaml": ("child", 3, "FAILED"),
}

# Supported-type files that cannot run here, and why.
SLACK_ALERT = (
    "posts to a Slack webhook (the secret SLACK_WEBHOOK, hooks.slack.com) about the execution its Flow trigger names;"
    " SlackExecution runs against a local Slack server in tests/test_tasks_notifications_execution.py"
)  # notifications
SSH_OPS = (
    "runs commands over SSH on the author's hosts and mails the result through SendGrid (some also call AWS with "
    "the author's account)"
)
CANNOT_RUN: dict[str, str] = {
    # aws: every corpus flow names a real AWS bucket (no endpointOverride) and real credentials as secrets
    "blueprints/flows__postgres-s3-python-script.yaml": "uploads to the S3 bucket kestraio with AWS secrets; a "
    "Python script fetches a public API and writes to a Postgres host",
    "blueprints/flows__s3-map-over-objects.yaml": "lists a real S3 bucket with AWS secrets",
    "blueprints/flows__s3-trigger-python.yaml": "an S3 Trigger on a real bucket with AWS secrets; Docker runner",
    "blueprints/flows__s3-trigger.yaml": "an S3 Trigger on the bucket declarative-orchestration with AWS secrets",
    "examples/aws-cli__lisECSclusters.yml": "lists ECS clusters of a real AWS account (aws ecs list-clusters)",
    "examples/aws_s3__eventDrivenDuckDB.yml": "an S3 Trigger on a real bucket; MotherDuck token; mail server",
    "examples/aws_s3__s3Trigger.yml": "an S3 Trigger on the bucket declarative-orchestration with AWS secrets",
    "examples/aws_s3__s3TriggerCommands.yml": "an S3 Trigger on a real bucket; clones github.com/kestra-io/examples",
    "examples/aws_s3__uploadFileToS3.yml": "downloads a file from the internet and uploads it to a real S3 bucket",
    "examples/blueprints_published__102_postgresS3PythonScript.yml": "uploads to the S3 bucket kestraio with AWS "
    "secrets; a Python script fetches a public API and writes to a Postgres host",
    "examples/blueprints_published__23.yml": "creates a bucket in a real AWS account",
    "examples/blueprints_published__37_s3Trigger.yml": "an S3 Trigger on the bucket declarative-orchestration with "
    "AWS secrets",
    "kestra_prod/flows__demo.mailinblack__process_data.yml": "downloads from and uploads to the S3 bucket "
    "kestra-training with AWS secrets",
    "mlops-kestra-workflow/_flows__run_ml_pipeline.yml": "uploads to and is triggered by the S3 bucket "
    "winequality-red with AWS secrets",
    "blueprints/flows__ansible-deploy-configuration.yaml": "starts EC2 instances in a real AWS account (aws ec2 "
    "run-instances), then runs Ansible over SSH on them",
    # end aws
    K + "for-each-item-outputs-subflow.yaml": "read()s `items`, a file its ForEachItem parent stores (run through "
    "for-each-item-outputs.yaml)",
    K + "task-allow-warning-executable-foreachitem.yml": "calls io.kestra.tests.for-each-item-subflow-failed, which "
    "is not in the corpus",
    "blueprints/flows__duckdb-query.yaml": "downloads https://huggingface.co/…",
    "blueprints/flows__file-processing.yaml": "downloads a zip from https://divvy-tripdata.s3.amazonaws.com",
    "blueprints/flows__load-multiple-csv-files-into-excel.yaml": "downloads https://huggingface.co/…",
    "blueprints/flows__parquet-duckdb-to-excel.yaml": "DuckDB reads a Parquet file from https://huggingface.co/…",
    "examples/duckdb__duckDbQueryToCsv.yml": "downloads https://gist.githubusercontent.com/…",
    "kestra-playground/kestra__flows-federated__run_federated_ecommerce_batch.yaml": "calls other Kestra servers "
    "(envs.federated_gce_a_url…) over HTTP",
    "kestra_prod/flows__demo__foreach.yml": "downloads https://gist.githubusercontent.com/…",
    K + "pause_no_tasks.yaml": "Pause without delay: waits for a human to resume it",
    K + "pause_on_resume.yaml": "Pause without delay: waits for a human to resume it with onResume inputs",
    K + "subflow-child.yaml": "calls io.kestra.tests.subflow-grand-child, which is not in the corpus",
    K + "task-allow-failure-executable-flow.yml": "calls io.kestra.tests.for-each-item-subflow-failed, which is not "
    "in the corpus",
    K + "task-allow-warning-executable-flow.yml": "calls io.kestra.tests.for-each-item-subflow-failed, which is not "
    "in the corpus",
    K + "working-directory-taskrun-nested.yml": "renders {{ workerTaskrun }}, an internal variable of Kestra's 0.x "
    "worker (not part of the documented expression context)",
    "blueprints/flows__business-processes.yaml": "Pause for a human approval; Slack webhook and HTTP API secrets",
    "blueprints/flows__ci-cd-github-webhook.yaml": "needs Docker (python Script on the Docker runner); GitHub payload",
    "blueprints/flows__csv-duckdb-slack.yaml": "DuckDB downloads the httpfs extension and a CSV from https://; Slack "
    "webhook secret",
    "blueprints/flows__dlt-json-to-duckdb.yaml": "needs Docker (python Script on the Docker runner) and a public API",
    "blueprints/flows__failure-alert-gmail.yaml": "sends mail through Gmail's SMTP server with secrets",
    "blueprints/flows__generate-pdf-with-gotenberg.yaml": "calls a Gotenberg server over HTTP (a Docker service)",
    "blueprints/flows__get-all-namespaces.yaml": "calls a Kestra server's API (secret KESTRA_API_TOKEN)",
    "blueprints/flows__python-subflow-component.yaml": "needs Docker (python Script on the Docker runner)",
    "blueprints/flows__request-resources.yaml": "Pause for a human approval; Slack webhook; required form inputs",
    "blueprints/flows__send-email-with-attachment.yaml": "downloads https://huggingface.co/…; mail through SMTP "
    "with secrets",
    "blueprints/flows__ssl-certificate-expiry-monitor.yaml": "calls https://ssl-checker.io; mail with secrets",
    "blueprints/flows__webhook-xml-response.yaml": "its Python script imports the `kestra` package (not installed; "
    "pip would be needed); webhook key secret",
    "examples/blueprints_published__38_csvDuckDBSlack.yml": "DuckDB downloads the httpfs extension and a CSV from "
    "https://; Slack webhook secret",
    "examples/blueprints_published__3_parallelSubflows.yml": "its subflows blueprint.flow1..3 are only shown in "
    "comments, not in the corpus",
    "examples/blueprints_published__40_gitPython.yml": "clones https://github.com/kestra-io/scripts",
    "examples/blueprints_published__52_dbtGitDockerSnowflake.yml": "clones GitHub, dbt on Docker, Snowflake "
    "credentials",
    "examples/blueprints_published__54_wdirPandasPythonOutputs.yml": "needs pandas (not installed) and Docker",
    "examples/blueprints_published__56_gpuModal.yml": "clones GitHub, runs on Modal's cloud GPUs with secrets",
    "examples/blueprints_published__antipattern_parallel_subflows.yml": "its subflows blueprint.flow1..3 are not in "
    "the corpus",
    "examples/dltHub__dltHub.yml": "downloads from the chess.com API; needs the dlt package",
    "examples/flows__git__gitPython.yml": "clones https://github.com/kestra-io/examples",
    "examples/flows__notifications__slack__slackSendMessage.yml": "posts to a Slack webhook (envs.slack_webhook)",
    "examples/flows__python__pythonPandasCSV.yml": "downloads https://www.data.gouv.fr/…; needs pandas",
    "examples/flows__python__pythonScriptVenv.yml": "installs pandas==1.5.3 with pip at run time",
    ZC + "02-workflow-orchestration__flows__02_python.yaml": "needs Docker image python:3.11-slim and pip packages",
    ZC + "02-workflow-orchestration__flows__03_getting_started_data_pipeline.yaml": "downloads "
    "https://dummyjson.com/products; Docker",
    ZC
    + "cohorts__2025__02-workflow-orchestration__flows__01_getting_started_data_pipeline.yaml": "dummyjson.com; Docker",
    "kestra-playground/kestra__flows-operation-demo__local__resource_probe_local.yaml": "runs "
    "/app/kestra-playground/batch-groups/ec/batches/resource_probe/run.sh, a script of its deployment image",
    "kestra_prod/flows__demo__pipeline_full.yml": "calls demo.kestra.script.project_a.pipeline1 and project_b."
    "pipeline2, which are not in the corpus",
    "kestra_prod/flows__demo__process_row.yml": "read()s the file named by its `rows` input, a ForEachItem batch in "
    "Kestra's storage",
    "kestra_prod/flows__fraud_detection__api_fraud_detection.yml": "calls an external fraud-detection HTTP API; Docker",
    "kestra_prod/flows__training__exercice_duckdb_notification.yml": "downloads https://raw.githubusercontent.com/…; "
    "Slack webhook secret",
    "kestra_enterprise_resources/resources__flows__exercice1.yaml": "HTTP request to https://{{ inputs.domain_url }}; "
    "a KV value another flow sets",
    "kestra_enterprise_resources/resources__flows__extract.yaml": "calls an external weather HTTP API",
    RS + "analisis-credito__flows__afip_contacto_por_dni.yaml": "needs Docker, namespace files and external APIs",
    RS + "analisis-credito__flows__consulta_credixsa_cache_warmup.yaml": "needs "
    "Docker, namespace files, secrets and external APIs",
    RS + "analisis-credito__flows__consulta_cuad.yaml": "needs Docker, namespace files, secrets and external APIs",
    RS + "analisis-credito__flows__consulta_padron_a13.yaml": "needs Docker, "
    "namespace files, secrets and external APIs",
    RS + "analisis-credito__flows__consulta_quiebra_credix_http.yaml": "needs "
    "Docker, namespace files, secrets and external APIs",
    RS + "analisis-credito__flows__incoming_metamap_bridge.yaml": "needs Docker, "
    "namespace files, secrets and external APIs",
    RS + "analisis-credito__flows__renovacion_cruz_del_eje.yaml": "needs Docker, "
    "namespace files, secrets and external APIs",
    RS
    + "analisis-credito__flows__reporte_evaluacion_dashboard_snapshot.yaml": "Docker, namespace files, secrets, APIs",
    RS + "marketing-crm__flows__bitrix24_bcra_backfill.yaml": "needs Docker, "
    "namespace files, secrets and the Bitrix24 API",
    RS + "marketing-crm__flows__bitrix24_form_persistence.yaml": "needs Docker, "
    "namespace files, secrets and a database",
    RS + "marketing-crm__flows__bitrix24_form_webhook.yaml": "needs Docker, "
    "namespace files, secrets and the Bitrix24 API",
    RS + "marketing-crm__flows__bitrix24_lead_classification.yaml": "needs Docker, "
    "namespace files, secrets and the Bitrix24 API",
    "lighthouse-kestra/flows__ingest__exa_search.yaml": "calls the Exa search API (secrets)",
    "lighthouse-kestra/flows__monitors__alerts.yaml": "posts to a Slack webhook (secret)",
    "lighthouse-kestra/flows__process__embed_dedup.yaml": "needs Docker and a PostgreSQL server (secrets)",
    "etl-pipeline-kestra/src__flows__01_streaming_producer.yaml": "Bash running docker commands (Kafka producer)",
    "etl-pipeline-kestra/src__flows__02_topic_flink_postgres.yaml": "Bash running docker commands (Flink, PostgreSQL)",
    "etl-pipeline-kestra/src__flows__03_dim_gcs_to_bigquery.yaml": "Bash running docker commands (GCS, BigQuery)",
    "etl-pipeline-kestra/src__flows__04_fact_gcs_to_bigquery.yaml": "Bash running docker commands (GCS, BigQuery)",
    "etl-pipeline-kestra/src__flows__05_dbt_run.yaml": "Bash running docker commands (dbt on BigQuery)",
    "etl-pipeline-kestra/src__flows__06_kafka_consumer_clickhouse.yaml": "Bash running docker commands (Kafka, "
    "ClickHouse)",
    "etl-pipeline-kestra/src__flows__07_kafka_consumer_duckdb.yaml": "Bash running docker commands (Kafka consumer)",
    "dapper-cluster-kestra-flows/src__homelab__daily_cybersecurity_news_briefing.yaml": "calls subflows that need "
    "Docker and a Claude token; read()s namespace files",
    "dapper-cluster-kestra-flows/src__homelab__weekly_cybersecurity_summary.yaml": "calls the Kestra server's API "
    "(kestra.webserver.url); Docker",
    "dapper-cluster-kestra-flows/src__subflows__claude_content_analyzer.yaml": "needs Docker and a Claude OAuth token "
    "(globals)",
    "dapper-cluster-kestra-flows/src__subflows__markdown_report_generator.yaml": "needs Docker; inputs from its "
    "parent flow",
    "dapper-cluster-kestra-flows/src__subflows__rss_feed_collector.yaml": "needs Docker; downloads RSS feeds",
    "airflow-to-kestra-migration/kestra__flows__dag_factory.yaml": "calls http://api.open-notify.org",
    "airflow-to-kestra-migration/kestra__flows__etl.yaml": "calls http://api.open-notify.org",
    "airflow-to-kestra-migration/kestra__flows__etl_python.yaml": "calls http://api.open-notify.org; needs the "
    "`kestra` Python package",
    "airflow-to-kestra-migration/kestra__flows__etl_python_with_map.yaml": "calls http://api.open-notify.org; needs "
    "the `kestra` Python package",
    "airflow-to-kestra-migration/kestra__flows__etl_with_subflow.yaml": "calls airflow.etl_python, which calls "
    "http://api.open-notify.org",
    "kestra_options/flows__ingestion_deploy_v1.yml": "pip-installs packages and reads namespace files",
    "kestra-mmpp-pipeline/finpay_pipeline.yml": "FILE input; Docker; HTTP requests to external services",
    "p10_Kestra_etl_pipeline/bottleneck_pipeline_kestra.yml": "needs Docker and namespace files",
    "ExpenseGraphica_Kestra_Integration/kestra_flows_and_files__make_and_send_pdf.yaml": "pip-installs packages, "
    "reads namespace files, mails through smtp.resend.com",
    "kestra_flows/output__graphql__generic_fetch_and_publish.yaml": "needs Docker, a GraphQL API and Kafka",
    # core + namespace files
    "kestra_enterprise_resources/resources__flows__extract-all.yaml": "its Loop calls acme.weather.extract, a "
    "subflow that is not in the corpus",
    "kestra_enterprise_resources/resources__flows__log_staging_layer_assets.yaml": "loops over Kestra Enterprise "
    "assets (`assets()`), which gitsync does not have",
    K + "resume-execution.yaml": "resumes the execution its input names, a PAUSED one of another flow "
    "(tests/test_tasks_core_2x.py runs Resume on one)",
    # Redis, Ansible and Kestra's git sync tasks (issue #15 points 8 and 10)
    "blueprints/flows__redis-list.yaml": "connects to Redis at host.docker.internal (the blueprint's Docker host); "
    "tests/test_tasks_redis.py runs its tasks against the local redis-server",
    "examples/redis__setParallel.yml": "connects to Redis at host.docker.internal (the blueprint's Docker host)",
    "blueprints/flows__ansible-rolling-patch-wave.yaml": "patches remote servers over SSH with apt (an inventory of "
    "real hosts) and posts to a Slack webhook",
    ZC + "cohorts__2025__02-workflow-orchestration__flows__03_postgres_dbt.yaml": "dbt in Docker against a "
    "PostgreSQL server; reads the dbt project from GitHub's namespace files",
    ZC + "cohorts__2025__02-workflow-orchestration__flows__07_gcp_dbt.yaml": "dbt in Docker against BigQuery "
    "(GCP credentials)",
    "kestra_options/flows__analysis_deploy.yml": "runs its Python in a private Docker image and network",
    "kestra_options/flows__ingestion_deploy.yml": "runs its Python in a private Docker image and network",
    # jdbc postgres/mysql: each needs a database server; the playground and procedure flows run against this
    # machine's PostgreSQL in tests/test_tasks_jdbc_flows.py (the connection from ENV_* variables, or pointed here)
    "blueprints/flows__extract-load-mysql.yaml": "downloads from huggingface.co; MySQL at host.docker.internal",
    ZC + "02-workflow-orchestration__flows__04_postgres_taxi.yaml": "downloads from github.com; PostgreSQL at "
    "pgdatabase",
    ZC + "02-workflow-orchestration__flows__05_postgres_taxi_scheduled.yaml": "downloads from github.com; "
    "PostgreSQL at pgdatabase",
    ZC + "cohorts__2025__02-workflow-orchestration__flows__02_postgres_taxi.yaml": "downloads from github.com; "
    "PostgreSQL at host.docker.internal",
    ZC + "cohorts__2025__02-workflow-orchestration__flows__02_postgres_taxi_scheduled.yaml": "downloads from "
    "github.com; PostgreSQL at host.docker.internal",
    "examples/blueprints_published__58.yml": "downloads from raw.githubusercontent.com; PostgreSQL at sample_postgres",
    "examples/mysql__extractLoadMySQL.yml": "downloads from raw.githubusercontent.com; a database from its variables",
    "examples/postgres__copyIn.yml": "downloads from raw.githubusercontent.com; PostgreSQL at host.docker.internal",
    "examples/postgres__postgresQuery.yml": "PostgreSQL at host.docker.internal",
    "kestra-playground/batch-groups__affiliate__flows__build_affiliate_daily_report.yaml": "needs a PostgreSQL "
    "server (envs.batch_db_url); run in tests/test_tasks_jdbc_flows.py",
    "kestra-playground/batch-groups__affiliate__flows__build_affiliate_partner_rankings.yaml": "needs a PostgreSQL "
    "server (envs.batch_db_url); run in tests/test_tasks_jdbc_flows.py",
    "kestra-playground/batch-groups__affiliate__flows__generate_affiliate_mock_data.yaml": "needs a PostgreSQL "
    "server (envs.batch_db_url); run in tests/test_tasks_jdbc_flows.py",
    "kestra-playground/batch-groups__ec__flows__build_ecommerce_daily_report.yaml": "needs a PostgreSQL server "
    "(envs.batch_db_url); run in tests/test_tasks_jdbc_flows.py",
    "kestra-playground/batch-groups__ec__flows__generate_ecommerce_mock_data.yaml": "needs a PostgreSQL server "
    "(envs.batch_db_url); run in tests/test_tasks_jdbc_flows.py",
    "kestra_prod/flows__demo__postgres_procedure.yml": "PostgreSQL at postgres:5432; run pointed at this machine's "
    "in tests/test_tasks_jdbc_flows.py",
    # saas jobs: each calls its provider's hosted API with the author's account (tests/test_tasks_saas_*.py run these
    # types against the providers' documented APIs played on 127.0.0.1)
    "blueprints/flows__airbyte-sync-parallel-with-dbt.yaml": "syncs through an Airbyte server at "
    "host.docker.internal:8000, clones github.com/kestra-io/dbt-demo and builds it into BigQuery in Docker",
    "blueprints/flows__fivetran-sync-parallel-dbt-core.yaml": "syncs Fivetran connectors at api.fivetran.com, clones "
    "github.com/kestra-io/dbt-demo and builds it into BigQuery in Docker",
    "examples/blueprints_published__28_fivetranDbtCloud.yml": "syncs Fivetran connectors at api.fivetran.com and runs "
    "a dbt Cloud job at cloud.getdbt.com",
    "examples/blueprints_published__30_airbyteSyncParallelWithDbt.yml": "syncs through an Airbyte server at "
    "host.docker.internal:8000, clones github.com/kestra-io/dbt-demo and builds it into BigQuery in Docker",
    "examples/blueprints_published__31_airbyteCloudDbtCloud.yml": "syncs Airbyte Cloud connections at "
    "api.airbyte.com and runs a dbt Cloud job at cloud.getdbt.com",
    "examples/fivetran__fivetranDbtCloud.yml": "syncs Fivetran connectors at api.fivetran.com and runs a dbt Cloud "
    "job at cloud.getdbt.com",
    "examples/fivetran__fivetranSyncParallelDbtCloud.yml": "syncs Fivetran connectors at api.fivetran.com and runs "
    "a dbt Cloud job at cloud.getdbt.com",
    "examples/flows__staging__facebook.yml": "syncs a Fivetran connector at api.fivetran.com",
    "examples/flows__staging__googleAnalytics.yml": "syncs a Fivetran connector at api.fivetran.com",
    "examples/flows__staging__microsoftDynamics.yml": "syncs a Fivetran connector at api.fivetran.com",
    "examples/flows__staging__salesforce.yml": "syncs a Fivetran connector at api.fivetran.com",
    # notifications
    "blueprints/flows__failure-alert-slack.yaml": SLACK_ALERT,
    "blueprints/flows__flow-condition-executionnamespace.yaml": SLACK_ALERT,
    # ssh + sendgrid (+ aws cli): kestra-automation's operations flows, loadable once all three families shipped
    "kestra-automation/flows__prod__aws__clean-basex-backups.yml": SSH_OPS,
    "kestra-automation/flows__prod__aws__clean-corp-preview-s3.yml": SSH_OPS,
    "kestra-automation/flows__prod__aws__clean-ecr.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__backup-analytics.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__backup-binary-logs.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__backup-bondlinkreporting.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__backup-ipreoholdings.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__bondlink-logs.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__dev-database-backup.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__syslog-backup.yml": SSH_OPS,
    "kestra-automation/flows__prod__backups__wazuh-logs.yml": SSH_OPS,
    "kestra-automation/flows__prod__database__analytics-updates.yml": SSH_OPS,
    "kestra-automation/flows__prod__haproxy__saltrun-certificate-renewal.yml": SSH_OPS,
    "kestra-automation/flows__prod__security__clean-drone-resources.yml": SSH_OPS,
    "kestra-automation/flows__staging__backups__bondlink-logs.yml": SSH_OPS,
    "kestra-automation/flows__staging__backups__suricata.yml": SSH_OPS,
    "kestra-automation/flows__staging__backups__syslog-backup.yml": SSH_OPS,
    "kestra-automation/flows__staging__backups__wazuh-logs.yml": SSH_OPS,
    "kestra-automation/flows__staging__suricata__suricata-update.yml": SSH_OPS,
}

# A file whose `namespace.id` is also another selected file's: it runs in a runtime of its own.
SECOND_SOURCE = {"kestra-playground/kestra__flows-notification-affiliate__sample_affiliate_partner_batch.yaml"}

SECRETS = {
    "SECRET_MY_SECRET": '{"secretKey": "secretValue"}',
    "SECRET_NEW_LINE": "first line\nsecond line",
    "SECRET_WEBHOOK_KEY": "webhook-key",
    # the git sync tasks' credentials their authors provision (rendered, never used: the tasks do nothing)
    "SECRET_GITHUB_SSH_PRIVATE_KEY": "not-a-key",
    "SECRET_GITHUB_USERNAME": "someone",
    "SECRET_GITHUB_PASSWORD": "not-a-password",
}


def runnable_files() -> set[str]:
    """Corpus files whose types are all supported and that load (test_corpus's selection)."""
    return {r["file"] for r in corpus_rows() if supported(r) and r["file"] not in EXCEPTIONS and not residual_errors(r)}


def without_extend(text: str) -> str:
    """The flow without a top-level `extend:` block (Kestra blueprint metadata)."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines(keepends=True):
        if line.startswith("extend:"):
            skipping = True
            continue
        if skipping and (line.startswith((" ", "\t")) or not line.strip()):
            continue
        skipping = False
        out.append(line)
    return "".join(out)


DEPLOYED_ONLY = {K + "for-each-item-outputs-subflow.yaml"}
"""Files of CANNOT_RUN that a RUNS file calls as its subflow: deployed beside it, not run on their own."""


@dataclass
class Started:
    runtimes: list[Runtime]
    executions: dict[str, tuple[Runtime, str]]
    started_at: float


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Started]:
    """Every selected flow deployed and started at once (each runs on its own thread)."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in SECRETS.items():
            mp.setenv(name, base64.b64encode(value.encode()).decode())
        groups = [sorted(set(RUNS) - SECOND_SOURCE), sorted(SECOND_SOURCE)]
        runtimes: list[Runtime] = []
        executions: dict[str, tuple[Runtime, str]] = {}
        try:
            for index, files in enumerate(groups):
                rt = Runtime(tmp_path_factory.mktemp(f"corpus_run_{index}"))
                runtimes.append(rt)
                deployed = files + (sorted(DEPLOYED_ONLY) if index == 0 else [])
                rt.deploy({name.replace("/", "__"): without_extend((CORPUS / name).read_text()) for name in deployed})
                rt.runs.kv.set("io.kestra.tests", "my-key", {"field": "kv-field"})
                uids = _uids(rt)
                for name in files:
                    execution_id = rt.runs.create(uids[name.replace("/", "__")], INPUTS.get(name, {}))
                    executions[name] = (rt, execution_id)
            begin = time.monotonic()
            for rt, execution_id in executions.values():
                rt.runs.start(execution_id)
            yield Started(runtimes, executions, begin)
        finally:
            for rt in runtimes:
                _drain(rt)
                rt.close()


def _drain(rt: Runtime, timeout: float = 20) -> None:
    """Kill what still runs (a Pause nobody resumes) and let every execution end, Flow-triggered ones included.

    RunManager.shutdown only stops the executions it knows when it is called; one that a Flow trigger starts while
    it waits would write to the closed database.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = rt.store.query(
            "SELECT id, state FROM executions WHERE state NOT IN ({})".format(",".join("?" * len(TERMINAL))), TERMINAL
        )
        if not live:
            return
        for row in live:
            if row["state"] in ("RUNNING", "PAUSED", "CREATED", "QUEUED"):
                with contextlib.suppress(RunError):
                    rt.runs.request_kill(row["id"])
        time.sleep(0.1)


def _uids(rt: Runtime) -> dict[str, str]:
    """file name in the repository (flows/ stripped) -> flow uid."""
    return {row["path"].split("/", 1)[1]: row["uid"] for row in rt.store.query("SELECT uid, path FROM flows")}


def test_every_supported_file_is_either_run_or_explained() -> None:
    files = runnable_files()
    assert set(RUNS) & set(CANNOT_RUN) == set()
    assert sorted(files - set(RUNS) - set(CANNOT_RUN)) == [], "supported files neither run nor explained"
    assert sorted((set(RUNS) | set(CANNOT_RUN)) - files) == [], "entries that are not supported corpus files"
    assert set(CANNOT_RUN) >= DEPLOYED_ONLY
    for table in (INPUTS, TASK_STATES, TASK_OUTPUTS, ATTEMPTS):
        assert set(table) <= set(RUNS)


@pytest.mark.parametrize("name", sorted(RUNS))
def test_corpus_flow_runs_to_its_meant_state(started: Started, name: str) -> None:
    rt, execution_id = started.executions[name]
    state = _wait(rt, execution_id, started.started_at + WAIT_SECONDS)
    execution = rt.execution(execution_id)
    states = rt.states(execution)
    assert state == RUNS[name], f"{name}: {state}, error={execution['error']!r}, task runs={states}"
    for task, expected in TASK_STATES.get(name, {}).items():
        assert states.get(task) == expected, f"{name}: task {task} is {states.get(task)}, not {expected}: {states}"
    for task, outputs in TASK_OUTPUTS.get(name, {}).items():
        runs = [r for r in execution["task_runs"] if r["task_id"] == task]
        assert runs, f"{name}: no task run of {task}"
        assert {k: runs[-1]["outputs"].get(k) for k in outputs} == outputs, runs[-1]["outputs"]
    if name in ATTEMPTS:
        task, count, last = ATTEMPTS[name]
        attempts = [r for r in execution["task_runs"] if r["task_id"] == task]
        assert (len(attempts), attempts[-1]["state"]) == (count, last), [(r["attempt"], r["state"]) for r in attempts]


def _wait(rt: Runtime, execution_id: str, deadline: float) -> str:
    while True:
        state = rt.runs.execution_state(execution_id)
        if state in TERMINAL or time.monotonic() > deadline:
            return state
        time.sleep(0.05)
