"""Panels of the admin index and the audit list: production now and the chain's status."""

from __future__ import annotations

from django import template

from releases.admin_audit import iso as iso_format
from releases.models import AuditEvent
from releases.selectors import production_now
from releases.services.audit import audit_chain_status

register = template.Library()


@register.inclusion_tag("admin/releases/includes/production_now.html")
def production_now_panel():
    return {"production_now": production_now()}


@register.inclusion_tag("admin/releases/includes/chain_status.html")
def chain_status_banner():
    chain = audit_chain_status()
    first = chain.data.get("first_broken")
    row = AuditEvent.objects.filter(sequence=first).only("pk").first() if first else None
    return {"chain": chain, "first_broken_pk": row.pk if row else None}


@register.filter
def iso(moment) -> str:
    """2026-12-01T23:29:51+00:00: to the second, with the offset."""
    return iso_format(moment)
