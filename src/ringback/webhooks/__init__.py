"""Webhooks: the outbox dispatcher (``dispatcher``), signing (``signing``), the retry schedule
(``schedule``) and which targets an event goes to (``targets``)."""
