"""OpenAI `ChatCompletion`: one call of the Chat Completions API (`POST /v1/chat/completions`).

The request (platform.openai.com/docs/api-reference/chat/create): `model`, `messages` (each `role` and `content`),
the sampling settings (`temperature`, `top_p`, `n`, `stop`, `max_completion_tokens`, `presence_penalty`,
`frequency_penalty`, `logit_bias`), `user`, `tools` with `tool_choice`, `response_format` and
`prompt_cache_retention`, with `Authorization: Bearer <api key>`. The answer's `id`, `object`, `model`, `choices`
(each `message` with its `content` or `tool_calls`) and `usage` are the task's outputs, as they come.

Kestra's task has no property for the API's address (its client always calls api.openai.com); gitsync reads the
`OPENAI_BASE_URL` environment variable of the gitsync process, the one OpenAI's own clients read (a proxy, an
OpenAI-compatible server, a test server), and calls `https://api.openai.com/v1` without it.
"""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from pydantic import Field

from plugins.core._props import as_bool, as_int, as_map, as_str_list
from plugins.core.http import HttpOptions, Timeouts
from plugins.saas.api import JsonApi, first_text
from plugins.values import Options, StrList, StrMap
from runner.api import RunContext, TaskFailed
from runner.plugin import Task
from runner.types import Dyn

API_URL = "https://api.openai.com/v1"
URL_VARIABLE = "OPENAI_BASE_URL"
ROLES = ("system", "user", "assistant", "developer")


def openai_reason(body: Any) -> str | None:
    said = first_text(body, ("error", "message"))
    code = first_text(body, ("error", "code"), ("error", "type"))
    return f"{said} ({code})" if said and code else said


class ChatMessage(Options):
    role: str
    """system, user or assistant."""
    content: str | None = None
    name: str | None = None


class FunctionParameter(Options):
    name: str
    type: str = Field(default="string")
    """An OpenAPI data type: string, number, integer, boolean, array or object."""
    description: str | None = None
    enumValues: StrList | None = None
    """The only values the model may give."""
    required: Dyn[bool] = False


class ChatFunction(Options):
    name: str
    description: str | None = None
    parameters: list[FunctionParameter] | None = None


class ChatCompletion(Task):
    """Send a prompt or a list of messages to an OpenAI chat model; the answer's choices are the outputs."""

    type_name: ClassVar[str] = "io.kestra.plugin.openai.ChatCompletion"

    apiKey: str
    """The OpenAI API key; a secret."""
    model: str
    """The model (`gpt-4o`, …)."""
    messages: Dyn[list[ChatMessage]] | None = None
    """The conversation so far; needed when there is no `prompt`."""
    prompt: str | None = None
    """A user message, sent after `messages`."""
    functions: Dyn[list[ChatFunction]] | None = None
    """Functions the model may call (sent as tools)."""
    functionCall: str = "auto"
    """`auto`, `none`, or the name of one of `functions` to make the model call it."""
    temperature: Dyn[float] | None = 1.0
    """Sampling temperature, 0 to 2."""
    topP: Dyn[float] | None = None
    """Nucleus sampling; left to OpenAI when unset."""
    n: Dyn[int] = 1
    """How many choices to generate."""
    stop: StrList | None = None
    """Up to 4 sequences where the model stops."""
    maxTokens: Dyn[int] | None = None
    """The most completion tokens to generate."""
    presencePenalty: Dyn[float] | None = None
    """-2 to 2: positive values push the model towards new topics."""
    frequencyPenalty: Dyn[float] | None = None
    """-2 to 2: positive values make the model repeat itself less."""
    logitBias: StrMap | None = None
    """Token id -> bias (-100 to 100)."""
    user: str | None = None
    """An id of the end user, for OpenAI's abuse monitoring."""
    jsonResponseSchema: str | None = None
    """A JSON Schema (as text) the answer must follow (`response_format: json_schema`, strict)."""
    promptCaching: Dyn[bool] | None = None
    """Keep the prompt's prefix cached for 24 hours."""
    clientTimeout: Dyn[int] | None = None
    """Seconds to wait for the answer (600, OpenAI's clients' default, when unset)."""

    def run(self, ctx: RunContext) -> dict[str, Any]:
        body = self._body()
        timeout = as_int(self.clientTimeout, "clientTimeout") if self.clientTimeout is not None else 600
        api = JsonApi(
            provider="OpenAI",
            base_url=os.environ.get(URL_VARIABLE) or API_URL,
            headers={"Authorization": f"Bearer {self.apiKey}"},
            secrets=[self.apiKey],
            reason=openai_reason,
            options=HttpOptions(timeout=Timeouts(readIdleTimeout=f"PT{timeout}S")),
            cancelled=ctx.cancelled,
            on_retry=ctx.logger.warn,
        )
        answer = api.call("POST", "/chat/completions", body)
        if not isinstance(answer, dict) or not isinstance(answer.get("choices"), list):
            raise TaskFailed(f"OpenAI answered without choices: {str(answer)[:200]!r}")
        usage = answer.get("usage") or {}
        ctx.logger.info(
            f"OpenAI {answer.get('model')} answered {len(answer['choices'])} choice(s), "
            f"{usage.get('total_tokens')} tokens ({usage.get('prompt_tokens')} prompt, "
            f"{usage.get('completion_tokens')} completion)"
        )
        return {key: answer.get(key) for key in ("id", "object", "model", "choices", "usage")}

    def _body(self) -> dict[str, Any]:
        messages = [_message(m) for m in _items(self.messages, "messages", ChatMessage)]
        if self.prompt is not None:
            messages.append({"role": "user", "content": self.prompt})
        if not messages:
            raise TaskFailed("set prompt or messages: there is nothing to send to the model", permanent=True)
        body: dict[str, Any] = {"model": self.model, "messages": messages, "n": as_int(self.n, "n")}
        numbers = {
            "temperature": self.temperature,
            "top_p": self.topP,
            "presence_penalty": self.presencePenalty,
            "frequency_penalty": self.frequencyPenalty,
        }
        body.update({key: _float(value, key) for key, value in numbers.items() if value is not None})
        if self.maxTokens is not None:
            body["max_completion_tokens"] = as_int(self.maxTokens, "maxTokens")
        stop = as_str_list(self.stop, "stop")
        if stop:
            body["stop"] = stop
        bias = as_map(self.logitBias, "logitBias")
        if bias:
            body["logit_bias"] = {k: as_int(v, f"logitBias.{k}") for k, v in bias.items()}
        if self.user is not None:
            body["user"] = self.user
        if self.jsonResponseSchema is not None:
            body["response_format"] = _response_format(self.jsonResponseSchema)
        if self.promptCaching is not None and as_bool(self.promptCaching, "promptCaching"):
            body["prompt_cache_retention"] = "24h"
        body.update(self._tools())
        return body

    def _tools(self) -> dict[str, Any]:
        functions = [f for f in _items(self.functions, "functions", ChatFunction) if f.parameters is not None]
        choice = self.functionCall.strip()
        if not functions:
            if choice.lower() == "none":
                return {"tool_choice": "none"}
            if choice.lower() != "auto":
                raise TaskFailed(
                    f"functionCall names {choice!r} but no functions are given: add it to functions, or use auto",
                    permanent=True,
                )
            return {}
        tools = [{"type": "function", "function": _function(f)} for f in functions]
        if choice.lower() in ("auto", "none"):
            return {"tools": tools, "tool_choice": choice.lower()}
        if choice not in {f.name for f in functions}:
            names = ", ".join(f.name for f in functions)
            raise TaskFailed(f"functionCall {choice!r} is not one of functions ({names})", permanent=True)
        return {"tools": tools, "tool_choice": {"type": "function", "function": {"name": choice}}}


def _items(value: Any, name: str, model: type[Options]) -> list[Any]:
    """A list property rendered from an expression (JSON text) or written as a list, each item validated."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise TaskFailed(f"{name} must be a list, got {value[:80]!r}", permanent=True) from None
    if not isinstance(value, list):
        raise TaskFailed(f"{name} must be a list, got {type(value).__name__}", permanent=True)
    out = []
    for index, item in enumerate(value):
        try:
            out.append(item if isinstance(item, model) else model.model_validate(item))
        except ValueError as exc:
            raise TaskFailed(f"{name}[{index}]: {exc}", permanent=True) from None
    return out


def _message(message: ChatMessage) -> dict[str, Any]:
    role = message.role.strip().lower()
    if role not in ROLES:
        raise TaskFailed(f"a message's role must be one of {', '.join(ROLES)}, got {message.role!r}", permanent=True)
    out: dict[str, Any] = {"role": role, "content": message.content or ""}
    if message.name:
        out["name"] = message.name
    return out


def _function(function: ChatFunction) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in function.parameters or []:
        schema: dict[str, Any] = {"type": parameter.type}
        if parameter.description:
            schema["description"] = parameter.description
        allowed = as_str_list(parameter.enumValues, f"{parameter.name}.enumValues")
        if allowed:
            schema["enum"] = allowed
        properties[parameter.name] = schema
        if as_bool(parameter.required, f"{parameter.name}.required"):
            required.append(parameter.name)
    out: dict[str, Any] = {"name": function.name}
    if function.description:
        out["description"] = function.description
    out["parameters"] = {"type": "object", "properties": properties, "required": required}
    return out


def _response_format(text: str) -> dict[str, Any]:
    try:
        schema = json.loads(text)
    except ValueError as exc:
        raise TaskFailed(f"jsonResponseSchema is not valid JSON: {exc}", permanent=True) from None
    if not isinstance(schema, dict):
        raise TaskFailed("jsonResponseSchema must be a JSON Schema object", permanent=True)
    return {"type": "json_schema", "json_schema": {"name": "kestra_schema", "strict": True, "schema": schema}}


def _float(value: Any, name: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise TaskFailed(f"{name} must be a number, got {value!r}", permanent=True) from None
