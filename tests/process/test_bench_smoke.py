"""The benchmark's harness cannot rot: its 1-answer scenario (--quick) runs the real bot subprocess
against the fakes and must measure one exact answer. Not a timing test: no time is asserted."""

from __future__ import annotations

from pathlib import Path

from bench.run import report, run_scenario, select


async def test_one_answer_quick(tmp_path: Path) -> None:
    [scenario] = select("one", quick=True)
    result = await run_scenario(scenario, workdir=tmp_path)
    assert result.error is None, result.error
    assert result.completed == 1 and result.exact == 1 and not result.mismatches
    assert result.rate_limited == 0
    conv = result.conversations[0]
    assert conv.placeholder_at is not None and conv.first_words_at is not None and conv.final_at is not None
    assert conv.sent_at <= conv.placeholder_at <= conv.first_words_at <= conv.final_at
    assert result.chunks == scenario.words
    assert result.bot_cpu > 0 and result.peak_rss_mb > 0
    assert result.conversations[0].native and result.native == 1  # BOT_TRANSPORT=auto: streamed natively
    assert result.calls_by.get("chat.startStream") == 1 and result.calls_by.get("chat.stopStream") == 1
    text = report([result], markdown=False, quick=True, host="test machine")
    assert "1 answer" in text and "CPU us / chunk" in text
    assert "| 1 answer |" in report([result], markdown=True, quick=True, host="test machine")
