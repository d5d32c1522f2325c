"""Model Markdown (CommonMark + GFM) → Slack mrkdwn. Pure: no I/O, stdlib only.

Design
------
- **Safety first.** Every ``&``, ``<`` and ``>`` of the input is escaped (also inside code), so the
  model can never produce ``<!here>``, ``<@U1>``, ``<#C1>`` or any other Slack control sequence.
  The only raw ``<`` in the output starts a link this module built, ``<url>`` or ``<url|label>``,
  whose url starts with ``http://``, ``https://`` or ``mailto:`` and holds no whitespace, ``<``,
  ``>`` or ``|`` (a ``|`` in a url is percent-encoded as ``%7C``; one in a label becomes ``¦``).
  The only other raw ``>`` is a blockquote marker at the start of a line.
- **Fences.** The only lines that start with ``````` are the renderer's own fence lines, each
  exactly ``````` (the language is dropped), and they are always balanced. A run of three or more
  backticks anywhere else (inside code, in prose) gets a zero-width space (U+200B) between its
  backticks, so it can neither open nor close a Slack code block. An unclosed fence at the end (a
  partial, streaming answer) is closed.
- **Blocks** are recognised line by line: fenced code, ATX headings (→ a bold line), horizontal
  rules (→ ``──────────``), blockquotes (all ``>`` levels fold into one, Slack has no nesting; a
  code block or table inside a quote is shown unquoted, so every fence is a whole line),
  bullet lists (→ ``•``/``◦``/``▪``, 4 spaces per nesting level), ordered lists (kept, re-indented
  when nested), GFM task items (→ ``☐``/``☑``) and GFM tables (→ a code block with aligned columns).
  Everything else is a paragraph line whose leading whitespace is kept.
- **Inlines** follow CommonMark's precedence: code spans, autolinks, links and images are parsed
  first, then emphasis with the spec's delimiter-run algorithm (flanking rules, rule of 3), so
  ``snake_case`` and ``2 * 3 * 4`` stay as they are. ``**x**``/``__x__`` → ``*x*``, ``*x*``/``_x_``
  → ``_x_``, ``***x***`` → ``*_x_*``, ``~~x~~`` → ``~x~``; a style nested in itself is flattened
  (Slack cannot nest them). Bare ``http(s)://`` URLs are kept verbatim as text (Slack autolinks
  them) and are exempt from emphasis parsing.
- Robust: any string renders without raising; prose without Markdown renders as ``escape(prose)``
  (``\\r\\n`` is normalised to ``\\n``). Emphasis and code spans do not span lines.

Modules: ``safe`` (escaping, fences, the links the renderer builds), ``blocks`` (line by line, and
``to_mrkdwn``), ``inline`` (one line's code spans, links, autolinks), ``emphasis`` (the delimiter-run
algorithm).
"""

from bot.render.blocks import to_mrkdwn
from bot.render.safe import BULLETS, FENCE, HR, ZWSP, close_open_fence, escape

__all__ = ["BULLETS", "FENCE", "HR", "ZWSP", "close_open_fence", "escape", "to_mrkdwn"]
