"""Tools that drive the bot from the outside, apart from its own telephony: the scripted SIP caller behind
``voicebot call`` (``caller``, which dials through the bot's own pjsua2 endpoint, ``telephony.sip_endpoint``) and
the RTP pcap writer that feeds sipp (``rtp_pcap``)."""
