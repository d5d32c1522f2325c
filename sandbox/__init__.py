"""The offline sandbox: a local Slack-like workspace in the browser, with the real bot talking to it.

``python -m bot sandbox`` (or ``scripts/run.sh`` when no Slack credentials are configured) starts it. Nothing
in ``bot/`` or ``handlers/`` knows about it: the sandbox registers itself as a command of ``python -m bot``
(the ``threadline.commands`` entry point in pyproject.toml), the bot is started as in production, pointed at
the workspace by ``SLACK_API_URL``, and receives signed events from it.

- ``sandbox/slack.py``: the fake Slack Web API, response URLs, event delivery and Socket Mode (the
  end-to-end tests use it too);
- ``sandbox/workspace.py``: the fake plus the page's endpoints and live feed;
- ``sandbox/page.html``: the page (one static file, no build step);
- ``sandbox/demo_model.py``: an OpenAI-compatible demo model for when no model is configured (words in a
  question make it fail once or every attempt, to show retries, error notes and the Retry button);
- ``sandbox/runner.py``: starts the workspace, the model and the bot process, and stops them in order.
"""
