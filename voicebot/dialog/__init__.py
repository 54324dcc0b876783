"""The dialogue: what happens to a caller's words and keys before and after the language model.

- ``voicebot.dialog.guard``: ``EscalationGuard``, checked first on every event (operator phrases, the escalation
  key, frustration, repeated no-match / no-input). What it catches never reaches a menu or the model.
- ``voicebot.dialog.flow``: the menu graph from config (``MenuConfig``, validated at load) and ``MenuFlow``, which
  walks it: speech and DTMF options, the tools each node allows, free-form nodes where the model leads.

Nothing is re-exported here on purpose: ``voicebot.config`` imports ``voicebot.dialog.flow`` for the menu schema,
so this package must stay free of imports that lead back to ``voicebot.config``.
"""
