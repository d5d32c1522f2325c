"""The answer view's pure part: what each message shows, which carries a button, what changed."""

from __future__ import annotations

from bot.view import plan
from bot.view.plan import Frame, streaming_edge


def test_placeholder_until_words_arrive() -> None:
    assert plan.pieces(Frame(raw="", final=False, placeholder="_Thinking…_"), limit=3900) == ["_Thinking…_"]


def test_status_while_streaming_and_note_when_final() -> None:
    live = Frame(raw="Hello", final=False, status="_retrying, 2 of 3…_", note="done")
    assert plan.pieces(live, limit=3900) == ["Hello\n\n_retrying, 2 of 3…_"]
    final = Frame(raw="Hello", final=True, status="_retrying…_", note=":warning: cut")
    assert plan.pieces(final, limit=3900) == ["Hello\n\n:warning: cut"]


def test_prefix_comes_first_and_long_text_is_split() -> None:
    frame = Frame(raw="word " * 2000, final=True, prefix="<@U1> asked:\n>q")
    pieces = plan.pieces(frame, limit=3900)
    assert len(pieces) == 3 and pieces[0].startswith("<@U1> asked:")
    assert all(len(p) <= 3900 for p in pieces)


def test_only_the_last_message_has_a_button() -> None:
    assert plan.button_of(0, 2, final=False, final_button=None, stop=True) is None
    assert plan.button_of(1, 2, final=False, final_button=None, stop=True) == "stop"
    assert plan.button_of(1, 2, final=True, final_button="retry", stop=True) == "retry"
    assert plan.button_of(0, 1, final=True, final_button=None, stop=True) is None


def test_differs_compares_text_and_button() -> None:
    sent, buttons = ["a", "b"], [None, "stop"]
    assert not plan.differs(1, ["a", "b"], "stop", sent=sent, sent_buttons=buttons)  # type: ignore[arg-type]
    assert plan.differs(1, ["a", "b"], None, sent=sent, sent_buttons=buttons)  # type: ignore[arg-type]
    assert plan.differs(0, ["x", "b"], None, sent=sent, sent_buttons=buttons)  # type: ignore[arg-type]
    assert plan.differs(2, ["a", "b", "c"], None, sent=sent, sent_buttons=buttons)  # type: ignore[arg-type]


def test_streaming_edge_holds_back_unclosed_markers() -> None:
    assert streaming_edge("*(Demo") == ""
    assert streaming_edge("Hello **Bold") == "Hello "
    assert streaming_edge("see [the docs](http") == "see "
    assert streaming_edge("x = `code") == "x = "
    assert streaming_edge("line one\n_it") == "line one\n"


def test_streaming_edge_keeps_closed_and_ordinary_text() -> None:
    for text in (
        "Hello **Bold** and",
        "a snake_case name",
        "- item * two",
        "2 * 3 = 6",
        "see [the docs](http://x) ok",
        "```py\nx = *y",  # inside an open fence the renderer closes it
    ):
        assert streaming_edge(text) == text


def test_the_final_text_is_never_held_back() -> None:
    shown = plan.pieces(Frame(raw="Hello **Bold", final=True), limit=3900)[0]
    assert "Bold" in shown
    live = plan.pieces(Frame(raw="Hello **Bold", final=False, placeholder="…"), limit=3900)[0]
    assert "Bold" not in live and "*" not in live
