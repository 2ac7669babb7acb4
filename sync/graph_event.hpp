// Translation between CRM events and Microsoft Graph event JSON.
//
// Pure functions; thread-safe. Times go to Graph as wall times in the zone
// the CRM event was written in ("2026-12-01T10:00:00", "Europe/Berlin"),
// or UTC when it has none Graph knows; all-day events as midnight-to-
// midnight dates in that zone with isAllDay. From Graph, times are read as
// instants, the event's originalStartTimeZone becomes the CRM zone, and an
// all-day event keeps its dates (never shifted by the zone's offset).
// Sensitivity, showAs, the reminder and categories go both ways as they
// are. Participants are not sent (Outlook would e-mail invitations) nor read
// (an Outlook edit leaves the CRM's participants alone).
// Every event crmsync creates carries a transactionId
// (so a retried create never makes a second event) and crmsync's tag, a
// single-value extended property holding the CRM event id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/records.hpp"

namespace crmsync::sync {

/// "title" start - end, for conflict logs and checker reports.
std::string summary(const event_record& e);

/// The named MAPI property crmsync tags its events with.
inline constexpr const char* tag_property
    = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name crmsyncId";

/// The body of a create (`with_identity`: transactionId and tag) or of a
/// PATCH (content fields only).
std::string to_graph(const event_record& e, bool with_identity);

/// One event (or `@removed` item) as Graph sends it.
struct graph_event {
  std::string id;
  std::string change_key;
  bool removed = false;
  std::string type; ///< singleInstance, occurrence, exception, seriesMaster
  int64_t modified_ms = 0;
  /// The create's transactionId, when the app that made it set one (Graph
  /// returns it only then); crmsync's are own_create_of's.
  std::string transaction_id;
  /// title, times, all_day, time_zone, location, description,
  /// sensitivity, show_as, reminder_on, reminder_minutes, categories
  event_record content;
};

/// Decodes one Graph event object; false when it is not one.
bool from_graph(std::string_view json, graph_event& out);

/// Whether `item` is an event crmsync created for a CRM event of `org`
/// (its transactionId, "crmsync-" + org + event, as to_graph writes it);
/// `event` is that CRM event's id.
bool own_create_of(const graph_event& item, tenant_id org, event_id& event);

/// One page of a delta round: its items (raw JSON objects) and its links.
struct delta_page {
  std::vector<std::string> items;
  std::string next_link;
  std::string delta_link;
};

bool parse_delta_page(std::string_view json, delta_page& out);

/// "id" and "changeKey" of a Graph answer to a create or update.
bool read_id_and_change_key(std::string_view json, std::string& id,
                            std::string& change_key);

/// How Office 365's copy of an event (`office365`: from_graph's content)
/// differs from the CRM event, in the fields Graph gives back as they were
/// sent (not the body, which Graph turns into HTML, nor the location).
enum class content_difference : uint8_t {
  none,
  title_or_times, ///< the subject, the start or the end
  outlook_fields, ///< sensitivity, show as, the reminder or categories
};

content_difference compare_content(const event_record& crm,
                                   const event_record& office365);

/// What Office 365 holds of `e` once it was sent (to_graph, read back as
/// from_graph reads an event): times to the second, an all-day event's
/// dates, a zone Graph does not know as UTC.
event_record as_sent(const event_record& e);

} // namespace crmsync::sync
