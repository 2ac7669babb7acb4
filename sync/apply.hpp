// Applying Office 365's changes to the CRM: what one delta item asks for
// (nothing, a confirmed removal, an upsert through the tenant actor), what
// the GET that confirms a removal says, and the link an applied item
// leaves.
//
// Pure functions over records; no I/O. The caller (the sync engine) reads
// the link, sends the command to the tenant actor and stores the link.
// Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/ids.hpp"
#include "protocol/records.hpp"
#include "protocol/sync.hpp"
#include "sync/graph_event.hpp"

namespace crmsync::sync {

enum class item_action : uint8_t {
  ignore,          ///< a series master (its occurrences come one by one),
                   ///< or the removal of an event crmsync never linked
  own_echo,        ///< crmsync's own write coming back (same changeKey)
  confirm_removal, ///< a linked event removed: GET it, see after_confirm
  upsert,          ///< new or changed in Outlook: send `command`
};

struct item_decision {
  item_action action = item_action::ignore;
  /// For an upsert: the tenant actor's command. An update names the CRM
  /// event and the CRM version last synced: were the CRM's newer (changed
  /// on both sides), the tenant actor refuses it and the outbox's
  /// If-Match meets the conflict (see crm_moved_on).
  apply_office365 command;
};

/// One delta item of `owner`'s calendar; `link`: the link of its Graph id,
/// nullptr when it has none.
item_decision decide_item(const graph_event& item, const sync_link* link,
                          user_id owner);

/// The tenant actor refused an update with this error code: true when the
/// CRM side moved on (`not_found`: deleted there; `stale_version`: changed
/// there since the last sync), so the item is left to the outbox, whose
/// If-Match meets the conflict policy.
bool crm_moved_on(std::string_view tenant_error_code);

/// The link an applied upsert leaves (`applied`: the tenant's answer).
sync_link link_after_upsert(const graph_event& item,
                            const event_record& applied);

enum class removal_action : uint8_t {
  keep,          ///< it is still there (it moved out of the delta window)
  delete_in_crm, ///< gone: delete the CRM event, drop the link
  error,         ///< the GET failed otherwise: try again later
};

/// A linked event that Office 365 reports removed, or that a full round no
/// longer lists, is deleted in the CRM only if a GET of it meets 404:
/// `status` is that GET's (0: no answer).
removal_action after_confirm(int status);

} // namespace crmsync::sync
