// Messages of the node's timer services: durable reminders
// (actors/reminders.hpp) and the Graph governor (actors/governor.hpp).
//
// Plain value types with inspect(), registered in protocol/type_ids.hpp.
// A reminder wakes an entity (a calendar) at a stored time even when the
// entity is passivated or the node restarted; a permit is the right to
// send one Graph request now.
#pragma once

#include <cstdint>

#include <caf/meta/type_name.hpp>

#include "protocol/ids.hpp"
#include "protocol/messages.hpp"

namespace crmsync {

// -- reminders ----------------------------------------------------------------

/// What a reminder asks its target to do. Stored as one byte: values are
/// never renumbered, new kinds are appended.
enum class reminder_kind : uint8_t {
  reconcile = 1,          ///< run a delta sync even without a notification
  renew_subscription = 2, ///< renew the Graph subscription before it expires
};

inline const char* to_string(reminder_kind k) {
  switch (k) {
    case reminder_kind::reconcile:
      return "reconcile";
    case reminder_kind::renew_subscription:
      return "renew_subscription";
  }
  return "unknown";
}

/// Sets (or replaces) the reminder of `kind` for `target`: due at `due_ms`
/// (wall-clock milliseconds), then every `period_ms` when that is > 0.
/// A target has at most one reminder of each kind. The reminders actor
/// answers with the reminder as stored.
struct reminder {
  entity_key target;
  reminder_kind kind = reminder_kind::reconcile;
  int64_t due_ms = 0;
  int64_t period_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reminder& x) {
  return f(caf::meta::type_name("crmsync::reminder"), x.target, x.kind,
           x.due_ms, x.period_ms);
}

/// Removes the reminder of `kind` for `target`; answered with whether one
/// existed.
struct cancel_reminder {
  entity_key target;
  reminder_kind kind = reminder_kind::reconcile;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cancel_reminder& x) {
  return f(caf::meta::type_name("crmsync::cancel_reminder"), x.target, x.kind);
}

/// Sent to the reminders' handler (the directory, which routes it to the
/// target) when a reminder is due. `due_ms` is the time it was due, so a
/// late delivery is visible.
struct reminder_due {
  entity_key target;
  reminder_kind kind = reminder_kind::reconcile;
  int64_t due_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reminder_due& x) {
  return f(caf::meta::type_name("crmsync::reminder_due"), x.target, x.kind,
           x.due_ms);
}

/// What the reminders actor answers to `stats_atom`.
struct reminder_stats {
  uint64_t delivered = 0;
  /// When the actor wakes next (0: nothing stored).
  int64_t next_wake_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reminder_stats& x) {
  return f(caf::meta::type_name("crmsync::reminder_stats"), x.delivered,
           x.next_wake_ms);
}

// -- Graph governor -----------------------------------------------------------

/// Asks for the right to send one Graph request for `tenant`; answered
/// with a graph_permit once the app's and the tenant's rates allow it.
/// `not_after_ms` (wall-clock ms, 0: none) is when the asker stops
/// waiting (its request timeout): a request still queued then is answered
/// with an error instead of taking a permit nobody would use.
struct permit_request {
  tenant_id tenant;
  int64_t not_after_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, permit_request& x) {
  return f(caf::meta::type_name("crmsync::permit_request"), x.tenant,
           x.not_after_ms);
}

/// The right to send one Graph request now (it is counted when granted).
struct graph_permit {
  tenant_id tenant;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, graph_permit& x) {
  return f(caf::meta::type_name("crmsync::graph_permit"), x.tenant);
}

/// What the governor answers to `stats_atom`.
struct governor_stats {
  uint64_t granted = 0;
  /// Requests waiting for a permit, over all tenants.
  uint64_t queued = 0;
  /// Tenants with at least one waiting request.
  uint64_t tenants_waiting = 0;
  /// Requesters the governor watches (those with waiting requests).
  uint64_t requesters = 0;
  /// Tenants it keeps a queue and a window for (waiting or recently
  /// granted ones; the others are forgotten within about a second).
  uint64_t tenants_tracked = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, governor_stats& x) {
  return f(caf::meta::type_name("crmsync::governor_stats"), x.granted, x.queued,
           x.tenants_waiting, x.requesters, x.tenants_tracked);
}

// -- mailbox Graph budget -----------------------------------------------------

/// Asks a user's mailbox actor for one of its Graph slots (Outlook allows
/// a mailbox a few requests in flight and a number per window). `mail`:
/// the outgoing-mail lane, else the calendar sync's; the two take turns.
/// `not_after_ms` (wall-clock ms, 0: none) is when the asker stops
/// waiting: a request still queued then is answered with an error instead
/// of taking a slot nobody would use. `weight` is how many requests the
/// slot's one exchange is to Outlook: 1, or the requests inside a $batch
/// (Outlook counts each of them against the mailbox's window, while the
/// batch holds one slot of its concurrency). t13-async.
struct mailbox_slot_request {
  bool mail = false;
  int64_t not_after_ms = 0;
  uint32_t weight = 1;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_slot_request& x) {
  return f(caf::meta::type_name("crmsync::mailbox_slot_request"), x.mail,
           x.not_after_ms, x.weight);
}

/// A slot granted: the holder sends one Graph request (its retries
/// included) and then gives the ticket back with mailbox_slot_release.
struct mailbox_slot {
  uint64_t ticket = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_slot& x) {
  return f(caf::meta::type_name("crmsync::mailbox_slot"), x.ticket);
}

/// The request of a granted slot was answered (or abandoned).
struct mailbox_slot_release {
  uint64_t ticket = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_slot_release& x) {
  return f(caf::meta::type_name("crmsync::mailbox_slot_release"), x.ticket);
}

/// Asks a mailbox actor for its budget's figures.
struct mailbox_budget_request {};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_budget_request&) {
  return f(caf::meta::type_name("crmsync::mailbox_budget_request"));
}

/// A mailbox's Graph budget since its activation.
struct mailbox_budget {
  uint64_t in_flight = 0;     ///< slots granted and not given back
  uint64_t max_in_flight = 0; ///< the highest in_flight so far
  uint64_t queued_sync = 0;   ///< waiting, calendar sync lane
  uint64_t queued_mail = 0;   ///< waiting, outgoing mail lane
  /// Requests answered within the window (a $batch counts its inner
  /// requests).
  uint64_t in_window = 0;
  uint64_t granted_sync = 0;
  uint64_t granted_mail = 0;
  uint64_t reclaimed = 0; ///< slots taken back after their lease
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mailbox_budget& x) {
  return f(caf::meta::type_name("crmsync::mailbox_budget"), x.in_flight,
           x.max_in_flight, x.queued_sync, x.queued_mail, x.in_window,
           x.granted_sync, x.granted_mail, x.reclaimed);
}

} // namespace crmsync
