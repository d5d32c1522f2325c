"""Answer views (``base.AnswerView``): how an answer is shown while it is written."""
