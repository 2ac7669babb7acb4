// Turns admin API JSON (simdjson DOM) into the text crmsyncctl prints.
//
// Renderers are lenient: a field the node did not send shows as "-" rather
// than failing, so an older or newer node still gives a useful answer. List
// endpoints render page by page into a table so --all can add more pages.
#pragma once

#include "ctl/table.hpp"

#include <simdjson.h>

#include <string>
#include <string_view>

namespace crmsync::ctl {

/// Parses `body` into `out` (owned by `parser`). Returns false with a short
/// reason in `err` when the body is not valid JSON.
bool parse_json(simdjson::dom::parser& parser, const std::string& body,
                simdjson::dom::element& out, std::string& err);

/// One value as cell text: strings unquoted, numbers as sent, booleans as
/// "yes"/"no", null or missing as "-", arrays and objects as compact JSON.
std::string json_text(simdjson::simdjson_result<simdjson::dom::element> v);

/// The parts of an error body {"error":{"code","message","field"}}; fields
/// the body lacks stay empty. A body that is not of that shape gives its
/// first line (cut to 200 code points) as the message.
struct api_error {
  std::string code;
  std::string message;
  std::string field;
};
api_error parse_api_error(const std::string& body);

std::string render_status(simdjson::dom::element doc);
std::string render_actors(simdjson::dom::element doc);
std::string render_tenant(simdjson::dom::element doc);
std::string render_user(simdjson::dom::element doc);
std::string render_sync(simdjson::dom::element doc);
/// The convergence checker's answer: per user, then every difference.
std::string render_check(simdjson::dom::element doc);

/// Empty tables with the header rows of the list commands.
table tenants_table();
table events_table();
table audit_table();
table invites_table();
table join_requests_table();
table conflicts_table();

/// Appends one page's "items" to the table; `items` is the array value.
void add_tenant_rows(simdjson::dom::array items, table& out);
void add_event_rows(simdjson::dom::array items, table& out);
void add_audit_rows(simdjson::dom::array items, table& out);
void add_invite_rows(simdjson::dom::array items, table& out);
void add_join_request_rows(simdjson::dom::array items, table& out);
void add_conflict_rows(simdjson::dom::array items, table& out);

} // namespace crmsync::ctl
