"""Alerts: deliveries to channels (``delivery``), rule evaluation and incidents
(``incidents``), the watchdog's checks (``watchdog``) and the loop that runs them
(``service``)."""
