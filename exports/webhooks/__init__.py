"""Webhooks: a tenant's endpoints, told of each job's end by a signed POST (docs/webhooks.md).

models (endpoints, deliveries, attempts) → events (a delivery recorded with each terminal
transition, in its transaction) → delivery (sending, retries, ordering), with addresses (where
a URL may lead) and transport (one POST to one checked address) beneath, and jobs (the RQ
entry points), services (endpoints), selectors, admin above.
"""
