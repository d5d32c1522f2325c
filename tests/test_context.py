from hypothesis import given, settings
from hypothesis import strategies as st

from bot.context import Turn, build_prompt, drop_oldest, estimate_tokens


def turns(n: int, size: int = 40) -> list[Turn]:
    out = []
    for i in range(n):
        if i % 2 == 0:
            out.append(Turn(role="user", text=f"q{i} " + "x" * size, user=f"U{i}"))
        else:
            out.append(Turn(role="assistant", text=f"a{i} " + "y" * size))
    return out


def test_everything_fits() -> None:
    p = build_prompt(
        system_prompt="sys",
        history=turns(4),
        question=Turn(role="user", text="now?", user="U9"),
        budget_tokens=10_000,
    )
    assert [m["role"] for m in p.messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert p.messages[0]["content"] == "sys"
    assert p.messages[-1]["content"] == "<@U9>: now?"
    assert p.messages[1]["content"].startswith("<@U0>: q0")  # each user's turns are attributed
    assert p.messages[2]["content"].startswith("a1")  # the bot's answers are assistant turns
    assert p.dropped_turns == 0 and not p.question_truncated


def test_newest_turns_kept_system_always() -> None:
    history = turns(20, size=400)
    p = build_prompt(
        system_prompt="S" * 200,
        history=history,
        question=Turn(role="user", text="q", user="U"),
        budget_tokens=600,
    )
    kept = p.messages[1:-1]
    assert p.messages[0]["content"] == "S" * 200
    assert 0 < len(kept) < 20
    assert kept[-1]["content"] == history[-1].content()  # the newest turn is there
    assert p.dropped_turns == 20 - len(kept)


def test_huge_question_is_shortened_not_dropped() -> None:
    p = build_prompt(
        system_prompt="s",
        history=turns(3),
        question=Turn(role="user", text="z" * 100_000, user="U"),
        budget_tokens=1000,
    )
    assert p.question_truncated
    assert len(p.messages) == 2
    assert "shortened" in p.messages[-1]["content"]
    assert sum(estimate_tokens(m["content"]) for m in p.messages) <= 1000


def test_drop_oldest() -> None:
    p = build_prompt(
        system_prompt="s", history=turns(4), question=Turn(role="user", text="q"), budget_tokens=9999
    )
    shorter = drop_oldest(p)
    assert shorter is not None
    assert shorter.messages[0] == p.messages[0] and shorter.messages[-1] == p.messages[-1]
    assert shorter.messages[1:-1] == p.messages[3:-1]
    none_left = build_prompt(
        system_prompt="s", history=[], question=Turn(role="user", text="q"), budget_tokens=99
    )
    assert drop_oldest(none_left) is None


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 2000), max_size=30),
    question=st.integers(0, 20_000),
    budget=st.integers(100, 5000),
)
def test_budget_respected(sizes: list[int], question: int, budget: int) -> None:
    history = [
        Turn(role="user" if i % 2 else "assistant", text="w" * n, user="U1") for i, n in enumerate(sizes)
    ]
    p = build_prompt(
        system_prompt="sys",
        history=history,
        question=Turn(role="user", text="q" * question),
        budget_tokens=budget,
    )
    total = sum(estimate_tokens(m["content"]) for m in p.messages)
    assert total <= budget
    kept = p.messages[1:-1]
    # the kept turns are the newest ones, in order
    assert kept == [{"role": t.role, "content": t.content()} for t in history[len(history) - len(kept) :]]
