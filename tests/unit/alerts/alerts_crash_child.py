"""Child process of the crash test: deliver one alert to a webhook and (per $TRADING_ALERTS_CRASH)
die by SIGKILL between the send and its acknowledgement."""

from __future__ import annotations

import sys

from trading_core.alerts import DeliveryJournal, deliver
from trading_core.alerts.channels import AppriseChannel
from trading_core.alerts.model import Alert

if __name__ == "__main__":
    url, journal = sys.argv[1], sys.argv[2]
    alert = Alert(key="ps-000000000002:session_died:1", kind="session_died", severity="error",
                  subject="ps-000000000002", text="run worker died")
    deliver([alert], [AppriseChannel("webhook", url)], DeliveryJournal(journal))
    print("acknowledged")
