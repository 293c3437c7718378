"""packviz.chat: templates render as transformers renders them, assistant spans are
exact (marked or placed), and bad templates or conversations are clear errors."""

from __future__ import annotations

import datetime
import json

import pytest
from chat_tokenizers import CHAT
from hypothesis import given
from hypothesis import strategies as st

import packviz as pv
from packviz.chat import CHATML, ChatTemplate, ChatTemplateError, load_chat_template, render_chat

#: The same rendered text as CHATML, without generation markers (spans must be placed).
CHATML_PLAIN = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
#: Llama-2 style: contents stripped, the end of text after a space.
LLAMA2 = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'].strip()"
    " + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + message['content'].strip() + ' '"
    " + eos_token }}"
    "{% else %}{{ '<<SYS>>\\n' + message['content'] + '\\n<</SYS>>\\n\\n' }}{% endif %}"
    "{% endfor %}"
)


def test_builtin_chatml_renders_like_transformers():
    from transformers.utils.chat_template_utils import render_jinja_template

    chat = render_chat(CHAT)
    texts, spans = render_jinja_template(
        conversations=[CHAT], chat_template=CHATML, return_assistant_tokens_mask=True
    )
    assert chat.text == texts[0] and list(chat.spans) == spans[0] and chat.marked
    assert [chat.text[s:e] for s, e in chat.spans] == [
        " résumé ✓ — naïve  x<|im_end|>",
        "Hello   world!<|im_end|>",
    ]


def test_placed_spans_equal_the_marked_ones():
    marked = render_chat(CHAT)
    placed = render_chat(CHAT, CHATML_PLAIN, end_of_turn=["<|im_end|>"])
    assert placed.text == marked.text and not placed.marked
    assert placed.spans == marked.spans
    # without an end-of-turn token, the contents alone
    bare = render_chat(CHAT, CHATML_PLAIN)
    assert [bare.text[s:e] for s, e in bare.spans] == [m["content"] for m in CHAT[2::2]]


def test_stripped_contents_and_special_tokens_of_the_template():
    messages = [
        {"role": "system", "content": "Answer."},
        {"role": "user", "content": " hi "},
        {"role": "assistant", "content": "  hello  "},
    ]
    template = ChatTemplate(LLAMA2, {"bos_token": "<s>", "eos_token": "</s>"})
    chat = render_chat(messages, template, end_of_turn=["</s>"])
    assert chat.text == "<<SYS>>\nAnswer.\n<</SYS>>\n\n<s>[INST] hi [/INST] hello </s>"
    assert [chat.text[s:e] for s, e in chat.spans] == ["hello </s>"]


@given(st.text("at<|>_imsend\n ", min_size=1, max_size=6), st.text("ta<|\n", max_size=6))
def test_a_content_is_placed_where_it_is_even_if_it_occurs_earlier(answer, question):
    """Short answers such as 't' also occur in the markup ('<|im_start|>'): placing by
    rendering placeholders never mistakes one for the other."""
    messages = [
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]
    chat = render_chat(messages, CHATML_PLAIN)
    head = f"<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
    assert chat.spans == ((len(head), len(head) + len(answer)),)


def test_load_chat_template_from_a_tokenizer_config(tmp_path):
    config = {
        "chat_template": LLAMA2,
        "bos_token": {"content": "<s>", "special": True},
        "eos_token": "</s>",
        "model_max_length": 4096,
    }
    t = load_chat_template(json.dumps(config).encode())
    assert t.source == LLAMA2 and t.special_tokens == {"bos_token": "<s>", "eos_token": "</s>"}
    named = {
        "chat_template": [
            {"name": "default", "template": CHATML},
            {"name": "tool_use", "template": "x"},
        ]
    }
    path = tmp_path / "tokenizer_config.json"
    path.write_text(json.dumps(named))
    assert load_chat_template(path).source == CHATML
    assert load_chat_template(path, name="tool_use").source == "x"
    with pytest.raises(ChatTemplateError, match="no chat template named 'rag'.*'default'"):
        load_chat_template(path, name="rag")
    jinja = tmp_path / "chat_template.jinja"
    jinja.write_text(CHATML)
    assert load_chat_template(jinja).source == CHATML
    with pytest.raises(ChatTemplateError, match="has no chat_template"):
        load_chat_template(b'{"eos_token": "</s>"}')
    with pytest.raises(ChatTemplateError, match="not valid JSON"):
        load_chat_template(b'{"chat_template": ')
    with pytest.raises(ChatTemplateError, match="no chat template file"):
        load_chat_template(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("messages", "message"),
    [
        ([{"role": "tool", "content": "x"}], "message 0 has role 'tool'; use one of system"),
        ([{"role": "user"}], "message 0 has no 'content'"),
        ([{"role": "user", "content": None}], "message 0 has no 'content'"),
        ([{"content": "x"}], "message 0 has no 'role'"),
        ([{"role": "user", "content": ["a"]}], "message 0 content is list, not text"),
        (["hi"], "message 0 is str, not an object"),
        ([], "messages is empty"),
        ("hi", "messages must be a list"),
    ],
)
def test_bad_conversations_name_the_record(messages, message):
    with pytest.raises(pv.CorpusError, match=f"chats.jsonl line 3: {message}"):
        render_chat(messages, where="chats.jsonl line 3")


HELLO = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ messages.__class__.__mro__[1].__subclasses__() }}", "outside its sandbox"),
        ("{{ messages.append(1) }}", "outside its sandbox"),
        ("{{ ''.__class__ }}{{ cycler.__init__.__globals__ }}", "outside its sandbox"),
        ("{{ 'a' * 10**9 }}", "went past the sandbox's limits \\(a value too large"),
        (
            "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
            "limits \\(range\\(\\) past 1,048,576 items",
        ),
        ("{{ 'a' | center(10**9) }}", "limits \\(a number too large"),
        ("{{ 'a'.ljust(10**9) }}", "limits \\(a number too large"),
        ("{{ '%10000000000s' | format('a') }}", "limits \\(a format width too large"),
        ("{{ '%10000000000s' % 'a' }}", "limits \\(a format width too large"),
        ("{{ '{:>99999999}'.format('a') }}", "limits \\(a format width too large"),
        ("{{ 2 ** 100000 }}", "limits \\(an exponent too large"),
        ("{{ lipsum(10**6) }}", "failed to render it.*'lipsum' is undefined"),
        ("{{ raise_exception('roles must alternate') }}", "failed to render it.*alternate"),
        ("{{ messages[5]['content'] + 1 }}", "failed to render it"),
        ("{% for m in messages %}{{ m['content'].upper() }}|{% endfor %}", "cannot be found"),
        ("{% for m in messages %}{{ m['content'] * 2 }}{% endfor %}", "writes it more than once"),
        (
            "{% for m in messages %}{% if m.role == 'user' %}{{ m.content }}{% endif %}{% endfor %}",
            "drops or transforms it",
        ),
    ],
)
def test_bad_templates_name_the_record(template, message):
    with pytest.raises(pv.CorpusError, match=f"^data.csv row 7: .*{message}"):
        render_chat(HELLO, template, where="data.csv row 7")


def test_small_numbers_and_widths_still_work():
    t = "{{ '%5s' | format('a') }}{{ '{:>3}'.format('b') }}{{ 'c'.ljust(2) }}{{ 'd' | center(3) }}|"
    assert render_chat(HELLO, t, find_spans=False).text == "    a  bc  d |"
    # data is never mistaken for a limit: long numbers in contents, filtered values
    chat = [{"role": "user", "content": " see http://x.org/123456789 at 50%:1234567 "}]
    t = "{{ messages[0].content | trim }} {{ (10**8) | string }} {{ messages[0].content.strip() }}"
    text = render_chat(chat, t, find_spans=False).text
    assert text == "see http://x.org/123456789 at 50%:1234567 100000000 " + text[-41:]


def test_a_template_that_does_not_compile_is_a_template_error():
    with pytest.raises(ChatTemplateError, match="not a valid Jinja template"):
        render_chat(HELLO, "{% for m in messages %}")


def test_generation_blocks_that_cannot_be_placed_are_refused():
    for buffered in (
        "{% macro turn(m) %}ab{% generation %}{{ m.content }}{% endgeneration %}{% endmacro %}"
        "{% for m in messages %}x{{ turn(m) }}{% endfor %}",
        "{% for m in messages %}{% set x %}ab{% generation %}{{ m.content }}{% endgeneration %}"
        "{% endset %}{{ 'Q' + x }}{% endfor %}",
    ):
        with pytest.raises(pv.CorpusError, match="cannot be known"):
            render_chat(HELLO, buffered, where="r")
    nothing = "{% for m in messages %}{{ m.content }}{% endfor %}{% if false %}{% generation %}{% endgeneration %}{% endif %}"
    with pytest.raises(pv.CorpusError, match="marked no part of this conversation"):
        render_chat(HELLO, nothing, where="r")


# -------------------------------------------- what a template may cost (review finding 2)

#: Blow-ups that rendered before: each builds one huge value (a chain of steps, or one
#: step past the limit), measured with ``|length`` so that the output stays short.
HUGE = {
    "concat doubling": "{% set s = 'a' * 10**4 %}"
    + "{% set s = s ~ s %}" * 8
    + "{{ s|length }}",  # 2.56M chars
    "list doubling": "{% set s = [0] * 10**4 %}" + "{% set s = s + s %}" * 8 + "{{ s|length }}",
    "indent": "{{ ('a\\n' * 200)|indent(10000)|length }}",  # 2M chars in one step
    "star width": "{{ ('%*s' % (2000000, 'x'))|length }}",
    "nested format": "{{ '{0:{1}}{0:{1}}{0:{1}}{0:{1}}'.format('x', 600000)|length }}",
    "replace": "{{ ('a' * 1000)|replace('a', 'b' * 2000)|length }}",
    "int products": "{% set x = 7 ** 1000 %}{% set x = x * x %}" + "{% set x = x * x %}" * 4,
    "int powers": "{{ ((7 ** 1000) ** 1000) % 10 }}",
}


@pytest.mark.parametrize("name", sorted(HUGE))
def test_huge_values_are_refused_early(monkeypatch, name):
    """The sandbox's early limits (the child process of each render is given the
    parent's values, so a lower limit keeps these cheap)."""
    from packviz import _sandbox

    monkeypatch.setattr(_sandbox, "MAX_RENDERED_CHARS", 1 << 20)
    monkeypatch.setattr(_sandbox, "MAX_ITEMS", 1 << 20)
    with pytest.raises(pv.CorpusError, match="^r 9: .*went past the sandbox's limits"):
        render_chat(HELLO, HUGE[name], where="r 9", find_spans=False)


def test_a_huge_value_the_limits_miss_runs_out_of_the_child_memory(monkeypatch):
    """``join`` of a list of long texts: no early limit sees it coming; the child's
    address-space limit does, and the error names the record."""
    from packviz import _template_process

    monkeypatch.setattr(_template_process, "RENDER_MEMORY", 256 << 20)
    template = "{{ (['x' * 60000000] * 10)|join|length }}"
    with pytest.raises(pv.CorpusError, match="^r 4: the chat template ran out of memory .*256 MiB"):
        render_chat(HELLO, template, where="r 4", find_spans=False)
    assert render_chat(HELLO, "{{ 'ok' }}", find_spans=False).text == "ok"  # a fresh child


def test_only_the_builtin_chatml_renders_in_this_process(monkeypatch):
    from packviz import _template_process

    def no_child(memory):
        raise AssertionError("a child process was started")

    monkeypatch.setattr(_template_process, "_Child", no_child)
    monkeypatch.setattr(_template_process, "_IDLE", [])
    assert render_chat(CHAT).spans  # the built-in ChatML: in this process
    with pytest.raises(AssertionError, match="a child process was started"):
        render_chat(CHAT, CHATML + " ")


def test_templates_are_at_most_max_template_bytes(tmp_path):
    """A .jinja file, a template inside a config, a string and a ChatTemplate alike."""
    big = "x" * (pv.chat.MAX_TEMPLATE_BYTES + 1)
    jinja = tmp_path / "chat_template.jinja"
    jinja.write_text(big)
    with pytest.raises(ChatTemplateError, match="too big for a chat template"):
        load_chat_template(jinja)
    config = json.dumps({"chat_template": big}).encode()
    with pytest.raises(ChatTemplateError, match="too long \\(1,048,577 characters"):
        load_chat_template(config)
    for template in (big, ChatTemplate(big)):
        with pytest.raises(ChatTemplateError, match="too long"):
            render_chat(HELLO, template)
    jinja.write_text(CHATML)
    assert load_chat_template(jinja).source == CHATML


def test_jinja2_is_pinned_past_its_sandbox_escapes():
    """jinja2 3.1.0-3.1.5 have published sandbox escapes (CVE-2024-56326,
    CVE-2025-27516); ``wrap_str_format``, which the sandbox overrides, is from 3.1.5."""
    import re
    from pathlib import Path

    from packaging.requirements import Requirement

    text = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    block = text.split("dependencies = [", 1)[1].split("]", 1)[0]
    (jinja,) = [Requirement(d) for d in re.findall(r'"([^"]+)"', block) if "jinja2" in d]
    assert "3.1.5" not in jinja.specifier and "3.1.6" in jinja.specifier


# ---------------------------------------------------- the date templates see (finding 9)

#: Llama 3.1's way: ``date_string`` if the caller gives it, else ``strftime_now``.
DATED = (
    "{%- if not date_string is defined %}{%- set date_string = strftime_now('%d %b %Y') %}"
    "{%- endif %}Today Date: {{ date_string }}\n"
    "{% for m in messages %}{{ m.role }}: {{ m.content }}<|eot_id|>{% endfor %}"
)


def test_strftime_now_reports_a_fixed_day_not_the_clock(monkeypatch):
    from packviz import _sandbox

    class Later(datetime.datetime):  # the clock, were it read
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2031, 12, 31, 23, 59, 59)

    monkeypatch.setattr(_sandbox.datetime, "datetime", Later)
    chat = render_chat(HELLO, DATED, end_of_turn=["<|eot_id|>"])
    assert chat.text.startswith("Today Date: 26 Jul 2024\n")
    assert [chat.text[s:e] for s, e in chat.spans] == ["Hello<|eot_id|>"]
    for today in ("2025-01-31", datetime.date(2025, 1, 31), datetime.datetime(2025, 1, 31, 23)):
        text = render_chat(HELLO, DATED, today=today).text
        assert text.startswith("Today Date: 31 Jan 2025\n")
    assert render_chat(HELLO, "{{ strftime_now('%H:%M') }}", find_spans=False).text == "00:00"
    with pytest.raises(
        ValueError, match="today must be a date or text like '2024-07-26', got '31/01'"
    ):
        render_chat(HELLO, DATED, today="31/01")
