"""OpenAI's Chat Completions API, played from its published API reference (platform.openai.com/docs/api-reference).

- `POST /v1/chat/completions` with `Authorization: Bearer <api key>`; a wrong key is 401 `invalid_api_key`.
- Body: `model` (string) and `messages` (each `role` system/developer/user/assistant and `content`, optional `name`)
  are required; `temperature` (0-2), `top_p` (0-1), `n` (>= 1), `stop` (up to 4 strings), `max_completion_tokens`,
  `presence_penalty` / `frequency_penalty` (-2 to 2), `logit_bias` (token id -> -100..100), `user`, `tools`
  (`[{"type": "function", "function": {name, description, parameters (a JSON Schema object)}}]`), `tool_choice`
  (`none`, `auto`, `required`, or `{"type": "function", "function": {"name"}}` of one of the tools),
  `response_format` (`{"type": "json_schema", "json_schema": {name, strict, schema}}`), `prompt_cache_retention`
  (`in-memory` or `24h`). Any other field is 400 `unknown_parameter`.
- Answer: `{"id": "chatcmpl-…", "object": "chat.completion", "created", "model", "choices": [{"index",
  "message": {"role": "assistant", "content", "refusal": null, "tool_calls"?}, "logprobs": null,
  "finish_reason": "stop" | "tool_calls"}], "usage": {"prompt_tokens", "completion_tokens", "total_tokens"}}`.
- Errors: `{"error": {"message", "type", "param", "code"}}`; an unknown model is 404 `model_not_found`.

The model here is a small deterministic one: it answers "You said: <the last user message>", fills a JSON Schema's
properties from the prompt's words, and calls the chosen tool with the first enum value or the prompt.
"""

from __future__ import annotations

import json
from typing import Any

from saas.jobs_base import Answer, Provider, Request

MODELS = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}
BODY: dict[str, type | tuple[type, ...]] = {
    "model": str, "messages": list, "temperature": (int, float), "top_p": (int, float), "n": int, "stop": list,
    "max_completion_tokens": int, "presence_penalty": (int, float), "frequency_penalty": (int, float),
    "logit_bias": dict, "user": str, "tools": list, "tool_choice": (str, dict), "response_format": dict,
    "prompt_cache_retention": str,
}  # fmt: skip
ROLES = {"system", "developer", "user", "assistant"}


class FakeOpenAI(Provider):
    name = "openai"

    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.count = 0

    def error(self, status: int, message: str) -> Any:
        code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(status)
        kind = "requests" if status == 429 else "invalid_request_error"
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}

    def route(self, request: Request) -> Answer:
        if (request.method, request.path) != ("POST", "/v1/chat/completions"):
            raise self.refuse(404, f"Invalid URL ({request.method} {request.path})")
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            given = request.headers.get("authorization", "").removeprefix("Bearer ")
            shown = f"{given[:3]}*****{given[-4:]}" if len(given) > 8 else "***"
            raise self.refuse(401, f"Incorrect API key provided: {shown}.", violation=False)
        body = self.json_body(request, BODY, {"model", "messages"})
        if body["model"] not in MODELS:
            message = f"The model `{body['model']}` does not exist or you do not have access to it."
            raise self.refuse(404, message, violation=False)
        self._check(body)
        self.count += 1
        return Answer(200, self._answer(body))

    def _check(self, body: dict[str, Any]) -> None:
        for message in body["messages"]:
            if not isinstance(message, dict) or message.get("role") not in ROLES:
                raise self.refuse(400, f"a message needs a role of {sorted(ROLES)}: {message!r}")
            if not isinstance(message.get("content"), str) or set(message) - {"role", "content", "name"}:
                raise self.refuse(400, f"a message holds role, content (a string) and name: {message!r}")
        ranges = {"temperature": (0, 2), "top_p": (0, 1), "presence_penalty": (-2, 2), "frequency_penalty": (-2, 2)}
        for key, (low, high) in ranges.items():
            if key in body and not low <= body[key] <= high:
                raise self.refuse(400, f"{key} must be between {low} and {high}")
        if len(body.get("stop") or []) > 4 or body.get("n", 1) < 1:
            raise self.refuse(400, "stop holds at most 4 sequences and n is at least 1")
        names = [self._tool(tool) for tool in body.get("tools") or []]
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            if choice.get("type") != "function" or (choice.get("function") or {}).get("name") not in names:
                raise self.refuse(400, f"tool_choice names a function that is not in tools: {choice!r}")
        elif choice is not None and choice not in ("none", "auto", "required"):
            raise self.refuse(400, f"tool_choice must be none, auto, required or a named function: {choice!r}")
        fmt = body.get("response_format")
        if fmt is not None:
            spec = fmt.get("json_schema") or {}
            if fmt.get("type") != "json_schema" or not isinstance(spec.get("schema"), dict) or "name" not in spec:
                raise self.refuse(400, f"response_format json_schema needs a name and a schema: {fmt!r}")
        if body.get("prompt_cache_retention") not in (None, "in-memory", "24h"):
            raise self.refuse(400, "prompt_cache_retention is in-memory or 24h")

    def _tool(self, tool: Any) -> str:
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or tool.get("type") != "function" or not isinstance(function, dict):
            raise self.refuse(400, f"a tool is {{type: function, function: {{...}}}}: {tool!r}")
        parameters = function.get("parameters")
        if not isinstance(function.get("name"), str) or not isinstance(parameters, dict):
            raise self.refuse(400, f"a function needs a name and parameters: {function!r}")
        if parameters.get("type") != "object" or not set(parameters.get("required", [])) <= set(
            parameters.get("properties", {})
        ):
            raise self.refuse(400, f"parameters must be an object schema whose required are properties: {parameters}")
        return str(function["name"])

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        said = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
        tools = {t["function"]["name"]: t["function"] for t in body.get("tools") or []}
        choice = body.get("tool_choice")
        called = choice["function"]["name"] if isinstance(choice, dict) else None
        if called is None and choice in (None, "auto", "required") and tools:
            called = next(iter(tools))
        choices = []
        for index in range(body.get("n", 1)):
            if called is not None:
                message = {
                    "role": "assistant",
                    "content": None,
                    "refusal": None,
                    "tool_calls": [
                        {
                            "id": f"call_{index}",
                            "type": "function",
                            "function": {"name": called, "arguments": json.dumps(_fill(tools[called], said))},
                        }
                    ],
                }
                reason = "tool_calls"
            elif body.get("response_format"):
                schema = body["response_format"]["json_schema"]["schema"]
                content = json.dumps(_fill({"parameters": schema}, said))
                message, reason = {"role": "assistant", "content": content, "refusal": None}, "stop"
            else:
                message, reason = {"role": "assistant", "content": f"You said: {said}", "refusal": None}, "stop"
            choices.append({"index": index, "message": message, "logprobs": None, "finish_reason": reason})
        prompt = sum(len(str(m["content"]).split()) for m in body["messages"])
        completion = 4 * len(choices)
        return {
            "id": f"chatcmpl-test{self.count}", "object": "chat.completion", "created": 1714550400,
            "model": MODELS[body["model"]], "choices": choices,
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }  # fmt: skip


def _fill(function: dict[str, Any], said: str) -> dict[str, Any]:
    properties = (function.get("parameters") or {}).get("properties") or {}
    out: dict[str, Any] = {}
    for name, schema in properties.items():
        if schema.get("enum"):
            out[name] = schema["enum"][0]
        elif schema.get("type") in ("integer", "number"):
            out[name] = len(said.split())
        else:
            out[name] = said
    return out
