"""How one job moves through the suite, shared by every service that moves it.

The queue contracts (`contracts`), how work is enqueued and ordered (`dispatch`,
`fairness`), who holds it (`leases`), the state machine (`updates`, `transitions`), how
a job ends and what follows (`outcomes`, `retention`, `webhooks`) and the recovery of
whatever a crash left behind (`reconciler`). The rest of `shared/` is infrastructure
that knows nothing of jobs' states: settings, database, store, queue connection, media.
"""
