"""Outside systems the notifications and CDN purges talk to, one module each.

Every module here raises `outbound.DeliveryError` (never a third-party exception), saying
whether a retry may help; the services decide what to retry and record the outcome.
"""
