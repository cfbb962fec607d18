"""Compatibility suite: the official OpenAI and Anthropic SDKs against a
running subgate, one upstream model at a time.

The gateway's upstreams are testkit mocks that the Rust test steers by what
the prompt says: USE_TOOLS asks for a tool call, a tool result saying
"18 degrees" gets the final answer, THINK_HARD gets a thought, FAIL_RATE a
429. Each check prints one JSON line; the exit status says whether all
passed.
"""

import argparse
import json
import sys
import time
import traceback

import anthropic
import openai

HELLO = "Hello from the mock upstream."
WEATHER_TOOL_CHAT = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
WEATHER_TOOL_RESPONSES = {"type": "function", **WEATHER_TOOL_CHAT["function"]}
WEATHER_TOOL_ANTHROPIC = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_TOOL_CHAT["function"]["parameters"],
}


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


# --- OpenAI Chat Completions -------------------------------------------------

def chat_non_stream(client, model):
    reply = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "say hello"}])
    expect(reply.choices[0].message.content == HELLO, reply.choices[0].message.content)
    expect(reply.choices[0].finish_reason == "stop", reply.choices[0].finish_reason)
    expect(reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0, reply.usage)


def chat_stream_helper(client, model):
    with client.chat.completions.stream(model=model, messages=[{"role": "user", "content": "say hello"}]) as stream:
        final = stream.get_final_completion()
    expect(final.choices[0].message.content == HELLO, final.choices[0].message.content)


def chat_raw_stream_with_usage(client, model):
    chunks = list(client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "say hello"}],
        stream=True, stream_options={"include_usage": True},
    ))
    text = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    expect(text == HELLO, text)
    expect(chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0, chunks[-1])


def chat_tool_round_trip(client, model):
    messages = [{"role": "user", "content": "USE_TOOLS: what is the weather in Paris?"}]
    first = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL_CHAT])
    call = first.choices[0].message.tool_calls[0]
    expect(call.function.name == "get_weather", call)
    expect(json.loads(call.function.arguments) == {"city": "Paris"}, call.function.arguments)
    expect(first.choices[0].finish_reason == "tool_calls", first.choices[0].finish_reason)
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "18 degrees and sunny"})
    second = client.chat.completions.create(model=model, messages=messages, tools=[WEATHER_TOOL_CHAT])
    expect(second.choices[0].message.content == "It is sunny.", second.choices[0].message.content)


def chat_thinking(client, model):
    reply = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "THINK_HARD about it"}], reasoning_effort="low",
    )
    message = reply.choices[0].message
    expect(message.content == "Thought through.", message.content)
    expect(getattr(message, "reasoning_content", None) == "Deep thought.", message.model_extra)


def chat_error(client, model):
    try:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "FAIL_RATE now"}])
    except openai.RateLimitError as error:
        expect(error.status_code == 429, error.status_code)
        expect("slow down" in str(error), str(error))
        return
    raise AssertionError("no RateLimitError")


def chat_models(client, model):
    ids = [entry.id for entry in client.models.list()]
    expect(model in ids, ids)


# --- OpenAI Responses --------------------------------------------------------

def responses_non_stream(client, model):
    reply = client.responses.create(model=model, input="say hello")
    expect(reply.output_text == HELLO, reply.output_text)
    expect(reply.usage.input_tokens > 0, reply.usage)


def responses_stream_helper(client, model):
    with client.responses.stream(model=model, input="say hello") as stream:
        final = stream.get_final_response()
    expect(final.output_text == HELLO, final.output_text)


def responses_tool_round_trip(client, model):
    items = [{"role": "user", "content": "USE_TOOLS: what is the weather in Paris?"}]
    first = client.responses.create(model=model, input=items, tools=[WEATHER_TOOL_RESPONSES])
    calls = [item for item in first.output if item.type == "function_call"]
    expect(len(calls) == 1 and calls[0].name == "get_weather", first.output)
    expect(json.loads(calls[0].arguments) == {"city": "Paris"}, calls[0].arguments)
    items += [item.model_dump(exclude_none=True) for item in first.output]
    items.append({"type": "function_call_output", "call_id": calls[0].call_id, "output": "18 degrees and sunny"})
    second = client.responses.create(model=model, input=items, tools=[WEATHER_TOOL_RESPONSES])
    expect(second.output_text == "It is sunny.", second.output_text)


def responses_thinking(client, model):
    reply = client.responses.create(model=model, input="THINK_HARD about it", reasoning={"effort": "low", "summary": "auto"})
    reasoning = [item for item in reply.output if item.type == "reasoning"]
    expect(reasoning and reasoning[0].summary[0].text == "Deep thought.", reply.output)
    expect(reply.output_text == "Thought through.", reply.output_text)


def responses_error(client, model):
    try:
        client.responses.create(model=model, input="FAIL_RATE now")
    except openai.RateLimitError as error:
        expect(error.status_code == 429, error.status_code)
        return
    raise AssertionError("no RateLimitError")


# --- Anthropic Messages ------------------------------------------------------

def anthropic_non_stream(client, model):
    reply = client.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "say hello"}])
    expect(reply.content[0].text == HELLO, reply.content)
    expect(reply.stop_reason == "end_turn", reply.stop_reason)
    expect(reply.usage.input_tokens > 0 and reply.usage.output_tokens > 0, reply.usage)


def anthropic_stream_helper(client, model):
    with client.messages.stream(model=model, max_tokens=100, messages=[{"role": "user", "content": "say hello"}]) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expect(text == HELLO, text)
    expect(final.content[0].text == HELLO and final.stop_reason == "end_turn", final)


def anthropic_tool_round_trip(client, model):
    messages = [{"role": "user", "content": "USE_TOOLS: what is the weather in Paris?"}]
    first = client.messages.create(model=model, max_tokens=200, messages=messages, tools=[WEATHER_TOOL_ANTHROPIC])
    calls = [block for block in first.content if block.type == "tool_use"]
    expect(len(calls) == 1 and calls[0].name == "get_weather" and calls[0].input == {"city": "Paris"}, first.content)
    expect(first.stop_reason == "tool_use", first.stop_reason)
    messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": calls[0].id, "content": "18 degrees and sunny"}]})
    with client.messages.stream(model=model, max_tokens=200, messages=messages, tools=[WEATHER_TOOL_ANTHROPIC]) as stream:
        second = stream.get_final_message()
    expect(second.content[0].text == "It is sunny.", second.content)


def anthropic_thinking(client, model):
    messages = [{"role": "user", "content": "THINK_HARD about it"}]
    thinking = {"type": "enabled", "budget_tokens": 2000}
    with client.messages.stream(model=model, max_tokens=4000, thinking=thinking, messages=messages) as stream:
        first = stream.get_final_message()
    expect(first.content[0].type == "thinking" and first.content[0].thinking == "Deep thought.", first.content)
    expect(first.content[-1].type == "text" and first.content[-1].text == "Thought through.", first.content)
    # The thinking goes back as it came.
    messages.append({"role": "assistant", "content": [block.model_dump(exclude_none=True) for block in first.content]})
    messages.append({"role": "user", "content": "and then?"})
    second = client.messages.create(model=model, max_tokens=4000, thinking=thinking, messages=messages)
    expect(second.content[-1].type == "text", second.content)


def anthropic_error(client, model):
    try:
        client.messages.create(model=model, max_tokens=100, messages=[{"role": "user", "content": "FAIL_RATE now"}])
    except anthropic.RateLimitError as error:
        expect(error.status_code == 429, error.status_code)
        expect(error.body["error"]["type"] == "rate_limit_error", error.body)
        return
    raise AssertionError("no RateLimitError")


def anthropic_count_tokens(client, model):
    count = client.messages.count_tokens(model=model, messages=[{"role": "user", "content": "count these tokens please"}])
    expect(count.input_tokens > 0, count)


def anthropic_models(client, model):
    ids = [entry.id for entry in client.models.list()]
    expect(model in ids, ids)


CHECKS = {
    "openai-chat": [chat_non_stream, chat_stream_helper, chat_raw_stream_with_usage, chat_tool_round_trip, chat_thinking, chat_error, chat_models],
    "openai-responses": [responses_non_stream, responses_stream_helper, responses_tool_round_trip, responses_thinking, responses_error],
    "anthropic": [anthropic_non_stream, anthropic_stream_helper, anthropic_tool_round_trip, anthropic_thinking, anthropic_error, anthropic_count_tokens, anthropic_models],
}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--models", required=True, help="comma-separated upstream model names")
    args = parser.parse_args()
    clients = {
        "openai-chat": openai.OpenAI(base_url=args.base_url + "/v1", api_key="unused", max_retries=0),
        "anthropic": anthropic.Anthropic(base_url=args.base_url, api_key="unused", max_retries=0),
    }
    clients["openai-responses"] = clients["openai-chat"]
    failures = 0
    for model in args.models.split(","):
        for family, checks in CHECKS.items():
            for check in checks:
                result = {"model": model, "client": family, "check": check.__name__, "ok": True}
                try:
                    check(clients[family], model)
                except Exception as error:  # noqa: BLE001 - every failure is reported, none stops the suite
                    failures += 1
                    result["ok"] = False
                    result["error"] = f"{type(error).__name__}: {error}"
                    result["trace"] = traceback.format_exc(limit=3)
                print(json.dumps(result), flush=True)
                if check.__name__.endswith("_error"):
                    # The 429 rested the account for the upstream's
                    # retry-after-ms (20 ms); let it come back.
                    time.sleep(0.1)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
