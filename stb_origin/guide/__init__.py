"""The programme guide: XMLTV import, schedules, now/next."""
