"""Tests for bot.render: Markdown → Slack mrkdwn (examples per rule + hypothesis properties)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.render import BULLETS, HR, ZWSP, close_open_fence, escape, to_mrkdwn

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A link the renderer may produce: <url> or <url|label>.
LINK = re.compile(r"<(?:https?://|mailto:)[^\s<>|]+(?:\|[^<>|\n]*)?>")
ENTITY = re.compile(r"&(?:amp|lt|gt);")


def fence_lines(text: str) -> list[str]:
    return [line for line in text.split("\n") if line.startswith("```")]


def assert_safe(out: str) -> None:
    """The invariants every rendered text satisfies."""
    for bad in ("<!", "<@", "<#"):
        assert bad not in out, out
    link_spans: list[tuple[int, int]] = []
    for pos, ch in enumerate(out):
        if ch == "<":
            m = LINK.match(out, pos)
            assert m is not None, f"stray '<' at {pos}: {out!r}"
            link_spans.append(m.span())
    link_ends = {end - 1 for _, end in link_spans}
    line_starts = {0} | {m.end() for m in re.finditer("\n", out)}
    for pos, ch in enumerate(out):
        if ch == ">" and pos not in link_ends:
            assert pos in line_starts, f"stray '>' at {pos}: {out!r}"
            assert out[pos + 1 : pos + 2] in ("", " ", "\n"), out
        if ch == "&":
            assert ENTITY.match(out, pos), f"bare '&' at {pos}: {out!r}"
    fences = fence_lines(out)
    assert len(fences) % 2 == 0, out
    assert all(line == "```" for line in fences), out
    assert out.count("```") == len(fences), out  # ``` only ever appears as a whole fence line


# -- escape ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("plain", "plain"),
        ("a & b", "a &amp; b"),
        ("<tag>", "&lt;tag&gt;"),
        ("&amp;", "&amp;amp;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<<>>&&", "&lt;&lt;&gt;&gt;&amp;&amp;"),
    ],
)
def test_escape(text: str, expected: str) -> None:
    assert escape(text) == expected


# -- control sequences are neutralised -------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<!here>", "&lt;!here&gt;"),
        ("<!everyone>", "&lt;!everyone&gt;"),
        ("<!subteam^S123>", "&lt;!subteam^S123&gt;"),
        ("<!subteam^S123|@team>", "&lt;!subteam^S123|@team&gt;"),
        ("<@U123>", "&lt;@U123&gt;"),
        ("<@U123|bob>", "&lt;@U123|bob&gt;"),
        ("<#C1>", "&lt;#C1&gt;"),
        ("<#C1|general>", "&lt;#C1|general&gt;"),
        ("<!date^1392734382^{date}|x>", "&lt;!date^1392734382^{date}|x&gt;"),
        ("hi <!here> & bye", "hi &lt;!here&gt; &amp; bye"),
        ("`<!here>`", "`&lt;!here&gt;`"),
        ("```\n<!channel>\n```", "```\n&lt;!channel&gt;\n```"),
        ("**<!here>**", "*&lt;!here&gt;*"),
        ("[<!here>](https://x.y)", "<https://x.y|&lt;!here&gt;>"),
        ("[x](<!here>)", "x (!here)"),  # angle destination, not a safe scheme
        ("<javascript:alert(1)>", "&lt;javascript:alert(1)&gt;"),
        ("<slack://open>", "&lt;slack://open&gt;"),
        ("&lt;!here&gt;", "&amp;lt;!here&amp;gt;"),
        ("a > b < c", "a &gt; b &lt; c"),
        ("# <!here>", "*&lt;!here&gt;*"),
        ("- <@U1>", "• &lt;@U1&gt;"),
        ("| <!here> |\n|---|", "```\n&lt;!here&gt;\n-------\n```"),
    ],
)
def test_control_sequences_are_escaped(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected
    assert_safe(to_mrkdwn(markdown))


# -- emphasis --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic*", "_italic_"),
        ("_italic_", "_italic_"),
        ("***both***", "*_both_*"),
        ("___both___", "*_both_*"),
        ("~~strike~~", "~strike~"),
        ("a **b** c *d* e ~~f~~", "a *b* c _d_ e ~f~"),
        ("**bold *and italic* inside**", "*bold _and italic_ inside*"),
        ("*italic **and bold** inside*", "_italic *and bold* inside_"),
        ("**a **b** c**", "*a b c*"),  # nested bold flattened: Slack cannot nest
        ("***a** b*", "_*a* b_"),
        ("~~**x**~~", "~*x*~"),
        ("**unclosed", "**unclosed"),
        ("*unclosed", "*unclosed"),
        ("~~unclosed", "~~unclosed"),
        ("~single~", "~single~"),
        ("a ~~~not~~~ b", "a ~~~not~~~ b"),
        ("snake_case_name", "snake_case_name"),
        ("2 * 3 * 4", "2 * 3 * 4"),
        ("a * b", "a * b"),
        ("** not bold **", "** not bold **"),
        ("foo*bar*baz", "foo_bar_baz"),
        ("foo_bar_baz", "foo_bar_baz"),
        ("**", "**"),
        ("a **** b", "a **** b"),
        ("\\*not italic\\*", "*not italic*"),
        ("\\_x\\_", "_x_"),
        ("*a*b*c*", "_a_b_c_"),
        ("**x** and **y**", "*x* and *y*"),
        ("_x_ and *y*", "_x_ and _y_"),
    ],
)
def test_emphasis(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


# -- headings --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("# Title", "*Title*"),
        ("## Title", "*Title*"),
        ("### Title", "*Title*"),
        ("#### Title", "*Title*"),
        ("##### Title", "*Title*"),
        ("###### Title", "*Title*"),
        ("####### Seven", "####### Seven"),
        ("#hashtag", "#hashtag"),
        ("# Title #", "*Title*"),
        ("# Title ###", "*Title*"),
        ("   # Indented", "*Indented*"),
        ("#", ""),
        ("# ", ""),
        ("# **Bold** heading", "*Bold heading*"),
        ("# A *b* c", "*A _b_ c*"),
        ("# ***x***", "*_x_*"),
        ("# Use `code`", "*Use `code`*"),
        ("# See [docs](https://d.io)", "*See <https://d.io|docs>*"),
        ("# C# & F#", "*C# &amp; F#*"),
        ("text\n# Heading\nmore", "text\n*Heading*\nmore"),
    ],
)
def test_headings(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


# -- lists -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("- item", "• item"),
        ("* item", "• item"),
        ("+ item", "• item"),
        ("- a\n- b\n- c", "• a\n• b\n• c"),
        ("- a\n  - b\n    - c\n      - d", "• a\n    ◦ b\n        ▪ c\n            • d"),
        ("- a\n    - b\n- c", "• a\n    ◦ b\n• c"),
        ("- a\n\t- b", "• a\n    ◦ b"),
        ("- a\n  - b\n- c\n  - d", "• a\n    ◦ b\n• c\n    ◦ d"),
        ("- a\n  - b\n    - c\n  - d", "• a\n    ◦ b\n        ▪ c\n    ◦ d"),
        ("- **bold** item", "• *bold* item"),
        ("- [link](https://a.b)", "• <https://a.b|link>"),
        ("- `code`", "• `code`"),
        ("- [ ] todo", "☐ todo"),
        ("- [x] done", "☑ done"),
        ("- [X] done", "☑ done"),
        ("  - [ ] nested todo", "☐ nested todo"),
        ("-", "•"),
        ("-not a list", "-not a list"),
        ("1. one", "1. one"),
        ("1. one\n2. two\n3. three", "1. one\n2. two\n3. three"),
        ("1) one", "1) one"),
        ("10. ten", "10. ten"),
        ("1. one\n   1. sub\n2. two", "1. one\n    1. sub\n2. two"),
        ("1. one\n   - sub", "1. one\n    ◦ sub"),
        ("- a\n\n- b", "• a\n\n• b"),
        ("- a\ntext\n  - b", "• a\ntext\n• b"),  # a paragraph ends the list
        ("3.14 is pi", "3.14 is pi"),
        ("1. **Step**: do it", "1. *Step*: do it"),
    ],
)
def test_lists(markdown: str, expected: str) -> None:
    assert to_mrkdwn(markdown) == expected


def test_bullets_cycle() -> None:
    assert BULLETS == ("•", "◦", "▪")


# -- links -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("[label](https://example.com)", "<https://example.com|label>"),
        ("[label](http://example.com)", "<http://example.com|label>"),
        ("[mail me](mailto:a@b.co)", "<mailto:a@b.co|mail me>"),
        ("[l](HTTPS://X.Y)", "<https://X.Y|l>"),
        ("[a|b](https://x.y)", "<https://x.y|a¦b>"),
        ("[a > b & c](https://x.y)", "<https://x.y|a &gt; b &amp; c>"),
        ("[**bold**](https://x.y)", "<https://x.y|bold>"),
        ("[`code`](https://x.y)", "<https://x.y|code>"),
        ("[](https://x.y)", "<https://x.y>"),
        ("[https://x.y](https://x.y)", "<https://x.y>"),
        ("[q](https://x.y/?a=1&b=2)", "<https://x.y/?a=1&amp;b=2|q>"),
        ("[q](https://x.y/a|b)", "<https://x.y/a%7Cb|q>"),
        ("[q](https://x.y/a_(b))", "<https://x.y/a_(b)|q>"),
        ('[q](https://x.y "Title")', "<https://x.y|q>"),
        ("[q](<https://x.y/a b>)", "q (https://x.y/a b)"),
        ("[q](<https://x.y/ab>)", "<https://x.y/ab|q>"),
        ("[js](javascript:alert(1))", "js (javascript:alert(1))"),
        ("[rel](/docs/page)", "rel (/docs/page)"),
        ("[ftp](ftp://x.y)", "ftp (ftp://x.y)"),
        ("[x](https://)", "x (https://)"),
        ("[outer [inner] text](https://x.y)", "<https://x.y|outer [inner] text>"),
        ("[not a link]", "[not a link]"),
        ("[not a link] (https://x.y)", "[not a link] (https://x.y)"),
        ("[unclosed](https://x.y", "[unclosed](https://x.y"),
        ("![alt text](https://img.png)", "<https://img.png|alt text>"),
        ("![](https://img.png)", "<https://img.png>"),
        ("![x](data:image/png;base64,AA)", "x (data:image/png;base64,AA)"),
        ("!not image", "!not image"),
        ("<https://auto.link/x>", "<https://auto.link/x>"),
        ("<http://auto.link>", "<http://auto.link>"),
        ("<mailto:a@b.c>", "<mailto:a@b.c>"),
        ("<a@b.co>", "<mailto:a@b.co|a@b.co>"),
        ("<https://x.y/a|b>", "<https://x.y/a%7Cb>"),
        ("<https://x y>", "&lt;https://x y&gt;"),
        ("see https://example.com/a_b_c now", "see https://example.com/a_b_c now"),
        ("see https://example.com/*x* now", "see https://example.com/*x* now"),
        ("(https://x.y/a)", "(https://x.y/a)"),
        ("https://x.y/?a=1&b=<2>", "https://x.y/?a=1&amp;b=&lt;2&gt;"),
        ("**https://x.y**", "*https://x.y*"),
        ("a [b](https://b.c) and [d](https://d.e) z", "a <https://b.c|b> and <https://d.e|d> z"),
    ],
)
def test_links(markdown: str, expected: str) -> None:
    out = to_mrkdwn(markdown)
    assert out == expected
    assert_safe(out)


# -- code ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("`code`", "`code`"),
        ("`**not bold**`", "`**not bold**`"),
        ("`a < b && c`", "`a &lt; b &amp;&amp; c`"),
        ("`[x](https://y.z)`", "`[x](https://y.z)`"),
        ("``a ` b``", "`a ` b`"),
        ("`` `x` ``", "``x``"),
        ("use `x` and `y`", "use `x` and `y`"),
        ("`unclosed", "`unclosed"),
        ("```python\nprint('hi')\n```", "```\nprint('hi')\n```"),
        ("```\nplain\n```", "```\nplain\n```"),
        ("~~~\ntilde\n~~~", "```\ntilde\n```"),
        ("~~~ruby\nputs 1\n~~~", "```\nputs 1\n```"),
        ("````\nfour\n````", "```\nfour\n```"),
        ("```\n**not bold** _not_ [x](https://y)\n```", "```\n**not bold** _not_ [x](https://y)\n```"),
        (
            "```\n# not heading\n- not list\n> not quote\n```",
            "```\n# not heading\n- not list\n&gt; not quote\n```",
        ),
        ("```\na < b & c > d\n```", "```\na &lt; b &amp; c &gt; d\n```"),
        ("```\n  indented\n\n  kept\n```", "```\n  indented\n\n  kept\n```"),
        ("  ```\n  x\n    y\n  ```", "```\nx\n  y\n```"),
        ("- item\n\n    ```sh\n    ls\n    ```", "• item\n\n```\nls\n```"),
        ("~~~\n```\ninner\n```\n~~~", f"```\n`{ZWSP}`{ZWSP}`\ninner\n`{ZWSP}`{ZWSP}`\n```"),
        ("````\n```\n````", f"```\n`{ZWSP}`{ZWSP}`\n```"),
        ("```\nbackticks `` ok\n```", "```\nbackticks `` ok\n```"),
        ("before\n```\ncode\n```\nafter", "before\n```\ncode\n```\nafter"),
        ("```js```", "`js`"),
        ("a ``` b", f"a `{ZWSP}`{ZWSP}` b"),
        ("```\n```", "```\n```"),
    ],
)
def test_code(markdown: str, expected: str) -> None:
    out = to_mrkdwn(markdown)
    assert out == expected
    assert_safe(out)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("```", "```\n```"),
        ("```python", "```\n```"),
        ("```python\nprint(1)", "```\nprint(1)\n```"),
        ("```python\nprint(1)\n", "```\nprint(1)\n\n```"),
        ("text\n```\na\n```\n```\nb", "text\n```\na\n```\n```\nb\n```"),
        ("~~~\nx\n```", f"```\nx\n`{ZWSP}`{ZWSP}`\n```"),
        ("```\nx\n``", "```\nx\n``\n```"),
    ],
)
def test_unclosed_fence_is_closed(markdown: str, expected: str) -> None:
    out = to_mrkdwn(markdown)
    assert out == expected
    assert_safe(out)


# -- close_open_fence ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mrkdwn", "expected"),
    [
        ("", ""),
        ("text", "text"),
        ("```\ncode", "```\ncode\n```"),
        ("```\ncode\n", "```\ncode\n```"),
        ("```\ncode\n```", "```\ncode\n```"),
        ("```\na\n```\n```\nb", "```\na\n```\n```\nb\n```"),
        ("```", "```\n```"),
        ("```python", "```python\n```"),
        ("inline ``` only", "inline ``` only"),
        ("> ```", "> ```"),
    ],
)
def test_close_open_fence(mrkdwn: str, expected: str) -> None:
    assert close_open_fence(mrkdwn) == expected


# -- tables ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        (
            "| a | b |\n|---|---|\n| 1 | 2 |",
            "```\na | b\n--+--\n1 | 2\n```",
        ),
        (
            "| Name | Age |\n|:-----|----:|\n| Alice | 30 |\n| Bob | 4 |",
            "```\nName  | Age\n------+----\nAlice |  30\nBob   |   4\n```",
        ),
        (
            "| c |\n|:-:|\n| wide |",
            "```\n c\n----\nwide\n```",
        ),
        (
            "a | b\n--|--\n1 | 2",
            "```\na | b\n--+--\n1 | 2\n```",
        ),
        (
            "| **b** | `c` | [l](https://x.y) |\n|---|---|---|\n| x | y | z |",
            "```\nb | c | l (https://x.y)\n--+---+----------------\nx | y | z\n```",
        ),
        (
            "| a | b |\n|---|---|\n| only one |",
            "```\na        | b\n---------+--\nonly one |\n```",
        ),
        (
            "| a | b |\n|---|---|\n| 1 | 2 | 3 |",
            "```\na | b\n--+--\n1 | 2\n```",
        ),
        (
            "| a \\| b | c |\n|---|---|\n| x | y |",
            "```\na | b | c\n------+--\nx     | y\n```",
        ),
        (
            "| see https://x.y/?a=1&b=2 |\n|---|",
            "```\nsee https://x.y/?a=1&amp;b=2\n" + "-" * 24 + "\n```",  # width of the unescaped text
        ),
        (
            "| x < y | & |\n|---|---|",
            "```\nx &lt; y | &amp;\n------+--\n```",
        ),
        (
            "| 名前 | n |\n|---|---|\n| ab | 1 |",
            "```\n名前 | n\n-----+--\nab   | 1\n```",
        ),
        (
            "intro\n\n| a |\n|---|\n| 1 |\n\nafter",
            "intro\n\n```\na\n-\n1\n```\n\nafter",
        ),
        (
            "| a |\n|---|\n| 1 |\ntext | with pipe",  # cells beyond the header's are dropped (GFM)
            "```\na\n----\n1\ntext\n```",
        ),
    ],
)
def test_tables(markdown: str, expected: str) -> None:
    out = to_mrkdwn(markdown)
    assert out == expected
    assert_safe(out)


@pytest.mark.parametrize(
    "markdown",
    [
        "| a | b |",  # no separator (yet): a streaming table is text until its separator arrives
        "| a | b |\n|---|",  # separator with the wrong number of cells
        "a | b\nnot a separator",
        "| a |\n---",  # a rule without pipes is a horizontal rule
    ],
)
def test_not_tables(markdown: str) -> None:
    assert not to_mrkdwn(markdown).startswith("```")


# -- blockquotes, rules, paragraphs ----------------------------------------------------------
@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("> quoted", "> quoted"),
        (">quoted", "> quoted"),
        ("> a\n> b", "> a\n> b"),
        ("> **bold** in quote", "> *bold* in quote"),
        ("> > nested", "> nested"),
        (">> nested", "> nested"),
        ("> a\n>\n> b", "> a\n>\n> b"),
        (">", ">"),
        ("> - item", "> • item"),
        ("> # Title", "> *Title*"),
        ("> <!here>", "> &lt;!here&gt;"),
        ("> a > b", "> a &gt; b"),
        ("> ```\n> code\n> ```", "```\ncode\n```"),  # a code block is shown unquoted
        ("> a\n> ```\n> code\n> ```\n> b", "> a\n```\ncode\n```\n> b"),
        ("> | a |\n> |---|\n> | 1 |", "```\na\n-\n1\n```"),
        ("a > b", "a &gt; b"),
        ("---", HR),
        ("***", HR),
        ("___", HR),
        ("- - -", HR),
        ("* * *", HR),
        ("-----------", HR),
        ("text\n\n---\n\nmore", f"text\n\n{HR}\n\nmore"),
        ("--", "--"),
        ("", ""),
        ("\n", "\n"),
        ("a\n\nb", "a\n\nb"),
        ("a\r\nb", "a\nb"),
        ("  indented text", "  indented text"),
        ("trailing  ", "trailing  "),
        ("back\\slash", "back\\slash"),
        ("\\# not a heading", "# not a heading"),
        ("\\- not a list", "- not a list"),
    ],
)
def test_blocks(markdown: str, expected: str) -> None:
    out = to_mrkdwn(markdown)
    assert out == expected
    assert_safe(out)


def test_horizontal_rule_is_box_drawing() -> None:
    assert set(HR) == {"─"}
    assert len(HR) >= 3


def test_full_answer() -> None:
    markdown = (
        "# Summary\n"
        "Here is **the plan** for <!channel>:\n"
        "\n"
        "1. Read the [docs](https://docs.example.com/start?x=1&y=2)\n"
        "2. Run `make <target>`\n"
        "   - check *everything*\n"
        "\n"
        "```bash\n"
        "echo '<@U123>' && rm -rf build\n"
        "```\n"
        "\n"
        "| Step | Time |\n"
        "|------|-----:|\n"
        "| one  | 5 |\n"
        "\n"
        "> Note: ~~old~~ new\n"
        "---\n"
    )
    expected = (
        "*Summary*\n"
        "Here is *the plan* for &lt;!channel&gt;:\n"
        "\n"
        "1. Read the <https://docs.example.com/start?x=1&amp;y=2|docs>\n"
        "2. Run `make &lt;target&gt;`\n"
        "    ◦ check _everything_\n"
        "\n"
        "```\n"
        "echo '&lt;@U123&gt;' &amp;&amp; rm -rf build\n"
        "```\n"
        "\n"
        "```\n"
        "Step | Time\n"
        "-----+-----\n"
        "one  |    5\n"
        "```\n"
        "\n"
        "> Note: ~old~ new\n"
        f"{HR}\n"
    )
    assert to_mrkdwn(markdown) == expected


# -- properties ------------------------------------------------------------------------------
NASTY_TOKENS = [
    "<", ">", "!", "@", "#", "&", "|", "*", "_", "~", "`", "[", "]", "(", ")", "\n", " ", "\\", "^",
    ":", "-", "+", ".", "1", "x", "here", "channel", "everyone", "subteam^S1", "U123", "C1",
    "http://x.y", "https://a.b/c?d=1&e=2", "mailto:m@n.o", "javascript:x", "a@b.co",
    "```", "~~~", "**", "__", "~~", "# ", "- ", "> ", "1. ", "---", "|---|", "amp;", "lt;", "gt;",
    "<!", "<@", "<#", "](", "![", "\t", "\r\n",
]  # fmt: skip
nasty_text = st.lists(st.sampled_from(NASTY_TOKENS), max_size=60).map("".join)
any_text = st.one_of(nasty_text, st.text(max_size=200))


@FAST
@given(any_text)
def test_output_is_always_safe(markdown: str) -> None:
    assert_safe(to_mrkdwn(markdown))


@FAST
@given(nasty_text, nasty_text)
def test_every_prefix_of_a_stream_is_safe(a: str, b: str) -> None:
    """A partial answer (any prefix) renders safely, with its fences closed."""
    for text in (a, a + b, a + "```python\n" + b, a + "\n```\n" + b + "\n~~~"):
        assert_safe(to_mrkdwn(text))


@FAST
@given(nasty_text)
def test_close_open_fence_balances(text: str) -> None:
    closed = close_open_fence(text)
    assert closed.startswith(text)
    assert len(fence_lines(closed)) % 2 == 0
    assert close_open_fence(closed) == closed


PROSE_WORD = st.builds(
    str.__add__,
    st.sampled_from(list("abcXYZéü中")),
    st.text(alphabet=st.sampled_from(list("abcXYZéü中0123456789.,;:?!'\"()/&<>=%$-")), max_size=12),
)
PROSE_LINE = st.lists(PROSE_WORD, min_size=1, max_size=12).map(" ".join)
PROSE = st.lists(st.one_of(PROSE_LINE, st.just("")), max_size=8).map("\n".join)


@FAST
@given(PROSE)
def test_plain_prose_is_only_escaped(prose: str) -> None:
    assert to_mrkdwn(prose) == escape(prose)


@FAST
@given(st.text(max_size=300))
def test_never_raises_and_is_deterministic(text: str) -> None:
    assert to_mrkdwn(text) == to_mrkdwn(text)


@pytest.mark.parametrize(
    "markdown",
    [
        "*" * 5000,
        "*a " * 3000,
        "_a_" * 3000,
        "[" * 5000 + "](https://x.y)",
        "`" * 5000,
        "` " * 5000,
        ">" * 3000,
        "- " * 2000,
        "![" * 3000,
        "<" * 5000,
        "\\" * 5000,
        "**a" * 2000 + "b**" * 2000,
        "|" * 3000 + "\n" + "|-" * 1500,
        "    " * 1000 + "- x",
    ],
)
def test_pathological_inputs_render(markdown: str) -> None:
    assert_safe(to_mrkdwn(markdown))
