"""Turning a notice for a group into deliveries, from the tenant's ``notificationPolicies``.

Routing is pure (no I/O) so the graph, the recording notifier and the delivering notifier all agree
on who hears about a case, and tests can check it without a server. A group's entries are email
addresses (anything containing ``@``) or channel names:

* every address of the group goes into ONE email, so a person listed twice, or in two spellings of
  case, gets one message; the email is sent from the group's email channel when it names one, else
  from the tenant's first email channel, else from the operator's default sender;
* every webhook channel named gets one post (its URL stays a secret reference here);
* naming an email channel only picks the sender; it adds no recipients by itself;
* unknown names are skipped (pack validation already rejects them).

When nothing is left, ``unrouted`` says why, so the audit trail can show that nobody was told.
"""

from __future__ import annotations

from packs.tenant import EmailChannel, NotificationPolicies, WebhookChannel
from tools.notifications.model import Delivery, Notice, NoticeEvent

BARE_EMAIL_CHANNEL = "email"
"""Channel name of the email delivery when the tenant declares no email channel."""


def should_notify(event: NoticeEvent, policies: NotificationPolicies) -> bool:
    """A playbook's explicit notify step always notifies; the graph's own triggers only when the
    tenant subscribed to them in ``notifyOn``."""
    return event == "step" or event in policies.notifyOn


def _email_sender(names: list[str], policies: NotificationPolicies) -> tuple[str, EmailChannel] | None:
    """The email channel the group names first, else the tenant's first email channel."""
    for name in names:
        channel = policies.channels.get(name)
        if isinstance(channel, EmailChannel):
            return name, channel
    for name, channel in policies.channels.items():
        if isinstance(channel, EmailChannel):
            return name, channel
    return None


def _addresses(names: list[str]) -> tuple[str, ...]:
    """Email addresses in first-seen order, without repeats (compared ignoring case)."""
    seen: set[str] = set()
    kept: list[str] = []
    for name in names:
        if "@" not in name or name.lower() in seen:
            continue
        seen.add(name.lower())
        kept.append(name)
    return tuple(kept)


def route(notice: Notice, policies: NotificationPolicies, *, default_from: str) -> list[Delivery]:
    """The deliveries for ``notice``: the group's email (if it lists addresses) first, then one per
    webhook channel in the order the group names them."""
    names = [name.strip() for name in policies.recipientsByGroup.get(notice.group, [])]
    deliveries: list[Delivery] = []
    recipients = _addresses(names)
    if recipients:
        sender = _email_sender(names, policies)
        if sender is None:
            deliveries.append(
                Delivery(BARE_EMAIL_CHANNEL, "email", recipients=recipients, from_address=default_from)
            )
        else:
            sender_name, sender_channel = sender
            deliveries.append(
                Delivery(
                    sender_name, "email", recipients=recipients,
                    from_address=sender_channel.fromAddress or default_from,
                )
            )  # fmt: skip
    posted: set[str] = set()
    for name in names:
        webhook = policies.channels.get(name)
        if not isinstance(webhook, WebhookChannel) or name in posted:
            continue
        posted.add(name)
        deliveries.append(Delivery(name, "webhook", url_ref=webhook.urlRef, format=webhook.format))
    return deliveries


def unrouted(notice: Notice, policies: NotificationPolicies) -> str | None:
    """Why ``notice`` reaches nobody, or None when it has at least one delivery."""
    if route(notice, policies, default_from="unused@localhost"):
        return None
    names = policies.recipientsByGroup.get(notice.group)
    if names is None:
        return f"group {notice.group!r} has no recipients in notificationPolicies.recipientsByGroup"
    if not names:
        return f"group {notice.group!r} has an empty recipient list in notificationPolicies.recipientsByGroup"
    return (
        f"group {notice.group!r} lists no email address or webhook channel "
        f"(only: {', '.join(repr(name) for name in names)})"
    )
