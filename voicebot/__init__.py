"""voicebot: a fully local voice assistant that answers real phone calls."""

import os

# Weights come only from models/ (see voicebot.models); libraries must never reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

__version__ = "0.1.0"
