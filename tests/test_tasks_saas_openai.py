"""OpenAI `ChatCompletion` against the Chat Completions API played on 127.0.0.1 from OpenAI's API reference
(tests/saas/openai.py), reached through `OPENAI_BASE_URL`: the request as documented, the outputs a flow reads.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from runtime import Runtime
from saas.jobs_base import ApiServer, serve
from saas.openai import FakeOpenAI
from taskctx import make_context

from plugins.openai.chat import URL_VARIABLE, ChatCompletion
from runner.api import TaskFailed

KEY = "sk-test-4f1b9c2d8e7a6b5c"


@pytest.fixture(scope="session")
def openai_server() -> Iterator[tuple[FakeOpenAI, ApiServer]]:
    provider = FakeOpenAI(KEY)
    with serve(provider) as server:
        yield provider, server


@pytest.fixture
def openai(openai_server: tuple[FakeOpenAI, ApiServer], monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    provider, server = openai_server
    provider.reset()
    monkeypatch.setenv(URL_VARIABLE, f"{server.url}/v1")
    yield provider
    assert provider.violations == []


def chat(**props: Any) -> ChatCompletion:
    return ChatCompletion.model_validate({"id": "chat", "type": ChatCompletion.type_name, "apiKey": KEY,
                                          "model": "gpt-4o", **props})  # fmt: skip


def test_flow_reads_the_completion(tmp_path: Path, openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_OPENAI_API_KEY", base64.b64encode(KEY.encode()).decode())
    runtime = Runtime(tmp_path)
    try:
        runtime.deploy(
            {
                "chat.yaml": """
            id: openai_chat
            namespace: company.team
            inputs:
              - id: prompt
                type: STRING
                defaults: What is data orchestration?
            tasks:
              - id: completion
                type: io.kestra.plugin.openai.ChatCompletion
                apiKey: "{{ secret('OPENAI_API_KEY') }}"
                model: gpt-4o
                prompt: "{{ inputs.prompt }}"
              - id: log_output
                type: io.kestra.plugin.core.log.Log
                message: "{{ outputs.completion.choices[0].message.content }}"
              - id: first
                type: io.kestra.plugin.core.log.Log
                message: "{{ outputs.completion.choices | jq('.[].message.content') | first }}"
        """
            }
        )
        execution = runtime.run("company.team.openai_chat")
    finally:
        runtime.close()
    assert execution["state"] == "SUCCESS", execution["logs"]
    assert execution["logs"].count("You said: What is data orchestration?") == 2
    outputs = execution["task_runs"][0]["outputs"]
    assert outputs["object"] == "chat.completion" and outputs["model"] == "gpt-4o-2024-08-06"
    assert outputs["usage"] == {"prompt_tokens": 4, "completion_tokens": 4, "total_tokens": 8}
    assert "OpenAI gpt-4o-2024-08-06 answered 1 choice(s), 8 tokens (4 prompt, 4 completion)" in execution["logs"]
    sent = openai.requests[0]
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.json() == {
        "model": "gpt-4o", "messages": [{"role": "user", "content": "What is data orchestration?"}], "n": 1,
        "temperature": 1.0,
    }  # fmt: skip


def test_messages_settings_and_a_forced_function(tmp_path: Path, openai: FakeOpenAI) -> None:
    task = chat(
        messages=[{"role": "system", "content": "You triage reviews."},
                  {"role": "user", "content": "I love your product!"}],
        functions=[{"name": "respond_to_review", "description": "Decide how urgently to reply.", "parameters": [
            {"name": "response_urgency", "type": "string", "description": "How urgent.", "required": True,
             "enumValues": ["reply_immediately", "reply_later"]},
            {"name": "response_text", "type": "string", "description": "The reply.", "required": True},
        ]}],
        functionCall="respond_to_review", temperature=0.2, topP=0.9, n=2, stop=["END"], maxTokens=200,
        presencePenalty=0.5, frequencyPenalty=-0.5, logitBias={"50256": -100}, user="analyst-7",
    )  # fmt: skip
    outputs = task.run(make_context(tmp_path))
    call = outputs["choices"][1]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "respond_to_review"
    assert json.loads(call["arguments"]) == {
        "response_urgency": "reply_immediately", "response_text": "I love your product!"
    }  # fmt: skip
    body = openai.requests[0].json()
    assert body["tool_choice"] == {"type": "function", "function": {"name": "respond_to_review"}}
    assert body["tools"][0]["function"]["parameters"] == {
        "type": "object",
        "properties": {
            "response_urgency": {"type": "string", "description": "How urgent.",
                                 "enum": ["reply_immediately", "reply_later"]},
            "response_text": {"type": "string", "description": "The reply."},
        },
        "required": ["response_urgency", "response_text"],
    }  # fmt: skip
    assert {k: body[k] for k in ("temperature", "top_p", "n", "stop", "max_completion_tokens", "user")} == {
        "temperature": 0.2, "top_p": 0.9, "n": 2, "stop": ["END"], "max_completion_tokens": 200, "user": "analyst-7"
    }  # fmt: skip
    assert body["logit_bias"] == {"50256": -100} and body["frequency_penalty"] == -0.5


def test_json_response_schema(tmp_path: Path, openai: FakeOpenAI) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "words": {"type": "integer"}},
              "required": ["city", "words"], "additionalProperties": False}  # fmt: skip
    outputs = chat(prompt="Paris in spring", jsonResponseSchema=json.dumps(schema), promptCaching=True).run(
        make_context(tmp_path)
    )
    assert json.loads(outputs["choices"][0]["message"]["content"]) == {"city": "Paris in spring", "words": 3}
    body = openai.requests[0].json()
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "kestra_schema", "strict": True, "schema": schema},
    }
    assert body["prompt_cache_retention"] == "24h"  # fmt: skip


def test_openai_errors_in_openai_words(tmp_path: Path, openai: FakeOpenAI) -> None:
    with pytest.raises(TaskFailed) as failed:
        chat(prompt="hi", model="gpt-9").run(make_context(tmp_path))
    assert failed.value.message == (
        "OpenAI refused POST /chat/completions (HTTP 404, not found): The model `gpt-9` does not exist or you do "
        "not have access to it. (model_not_found)"
    )
    wrong = "sk-wrong-key-0000111122223333"
    with pytest.raises(TaskFailed) as failed:
        chat(prompt="hi", apiKey=wrong).run(make_context(tmp_path))
    assert failed.value.message == (
        "OpenAI refused POST /chat/completions (HTTP 401, the credentials were not accepted): Incorrect API key "
        "provided: sk-*****3333. (invalid_api_key)"
    )
    assert wrong not in failed.value.message and failed.value.permanent


def test_rate_limit_then_answer(tmp_path: Path, openai: FakeOpenAI) -> None:
    limited = {"error": {"message": "Rate limit reached for gpt-4o on requests per min (RPM): Limit 3, Used 3",
                         "type": "requests", "param": None, "code": "rate_limit_exceeded"}}  # fmt: skip
    openai.fail(429, limited, times=1)
    ctx = make_context(tmp_path)
    assert chat(prompt="hi").run(ctx)["choices"][0]["message"]["content"] == "You said: hi"
    assert ctx.logger.messages("WARN") == [
        "OpenAI answered HTTP 429 to POST /chat/completions; trying again in 0 s (attempt 2 of 3)"
    ]
    openai.fail(429, limited, times=3)
    with pytest.raises(TaskFailed) as failed:
        chat(prompt="hi").run(make_context(tmp_path))
    assert failed.value.message.endswith(
        "(HTTP 429, too many requests: rate limited): Rate limit reached for gpt-4o on requests per min (RPM): "
        "Limit 3, Used 3 (rate_limit_exceeded)"
    )


@pytest.mark.parametrize(
    ("props", "said"),
    [
        ({}, "set prompt or messages: there is nothing to send to the model"),
        ({"prompt": "hi", "functionCall": "lookup"}, "functionCall names 'lookup' but no functions are given"),
        ({"prompt": "hi", "messages": [{"role": "robot", "content": "x"}]}, "a message's role must be one of"),
        ({"prompt": "hi", "jsonResponseSchema": "{not json"}, "jsonResponseSchema is not valid JSON"),
    ],
)
def test_bad_properties_fail_before_any_call(
    tmp_path: Path, openai: FakeOpenAI, props: dict[str, Any], said: str
) -> None:
    with pytest.raises(TaskFailed, match=f"^{said}"):
        chat(**props).run(make_context(tmp_path))
    assert openai.requests == []
