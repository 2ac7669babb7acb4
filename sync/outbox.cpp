#include "sync/outbox.hpp"

#include "sync/graph_event.hpp"

namespace crmsync::sync {

push_plan plan_push(const sync_change& change, const event_record* event,
                    const sync_link* link, const calendar_paths& paths) {
  push_plan out;
  if (change.deleted || event == nullptr) {
    if (link == nullptr)
      return out;
    out.kind = push_kind::remove;
    out.request = graph_request{"DELETE", paths.event(link->graph_id), "", {}};
    return out;
  }
  if (event->origin == event_origin::imported)
    return out;
  if (link == nullptr) {
    out.kind = push_kind::create;
    out.request
        = graph_request{"POST", paths.events(), to_graph(*event, true), {}};
    return out;
  }
  if (link->crm_version >= event->version)
    return out; // that version is there already
  out.kind = push_kind::update;
  out.request = graph_request{"PATCH",
                              paths.event(link->graph_id),
                              to_graph(*event, false),
                              {{"If-Match", if_match(link->change_key)}}};
  return out;
}

push_next after_push(push_kind kind, int status) {
  if (status >= 200 && status < 300)
    return push_next::done;
  switch (kind) {
    case push_kind::remove:
      return status == 404 ? push_next::done : push_next::error;
    case push_kind::update:
      if (status == 412)
        return push_next::conflict;
      return status == 404 ? push_next::recreate : push_next::error;
    case push_kind::create:
      return status == 404 ? push_next::calendar_gone : push_next::error;
    default:
      return push_next::error;
  }
}

uint64_t created_version(const event_record& sent, std::string_view answer) {
  graph_event held;
  if (!from_graph(answer, held)
      || compare_content(as_sent(sent), held.content)
             == content_difference::none)
    return sent.version;
  return sent.version > 0 ? sent.version - 1 : 0;
}

} // namespace crmsync::sync
