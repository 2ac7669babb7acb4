#include "sync/apply.hpp"

namespace crmsync::sync {

item_decision decide_item(const graph_event& item, const sync_link* link,
                          user_id owner) {
  item_decision out;
  if (item.type == "seriesMaster")
    return out;
  if (item.removed) {
    if (link != nullptr)
      out.action = item_action::confirm_removal;
    return out;
  }
  if (link != nullptr && item.change_key == link->change_key) {
    out.action = item_action::own_echo;
    return out;
  }
  out.action = item_action::upsert;
  auto& cmd = out.command;
  cmd.owner = owner;
  cmd.content = item.content;
  cmd.graph_id = item.id;
  cmd.change_key = item.change_key;
  if (link != nullptr) {
    cmd.event = link->event;
    cmd.expected_version = link->crm_version;
  }
  return out;
}

bool crm_moved_on(std::string_view tenant_error_code) {
  return tenant_error_code == "not_found"
         || tenant_error_code == "stale_version";
}

sync_link link_after_upsert(const graph_event& item,
                            const event_record& applied) {
  return sync_link{applied.id, item.id, item.change_key, applied.version};
}

removal_action after_confirm(int status) {
  if (status >= 200 && status < 300)
    return removal_action::keep;
  return status == 404 ? removal_action::delete_in_crm : removal_action::error;
}

} // namespace crmsync::sync
