// Turns admin API JSON (simdjson DOM) into the text crmsyncctl prints.
//
// Renderers are lenient: a field the node did not send shows as "-" rather
// than failing, so an older or newer node still gives a useful answer. List
// endpoints render page by page into a table so --all can add more pages.
#pragma once

#include "ctl/table.hpp"

#include <simdjson.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

namespace crmsync::ctl {

/// The people of one organization, for tables: a user id is shown as the
/// user's e-mail address, or as "e-mail (id)" when `wide` (--wide); an id
/// it does not know (another organization's, "service_admin") as sent.
struct people {
  std::map<std::string, std::string> email_of; ///< user id -> e-mail
  bool wide = false;
  std::string operator()(const std::string& id) const;
};

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
std::string render_check(simdjson::dom::element doc, const people& who);

/// GET /admin/v1/cluster: the node's view and a members table.
std::string render_cluster(simdjson::dom::element doc);
/// GET /admin/v1/shards: shard -> node, compact: one line per run of
/// consecutive shards on one node ("0-85  n1"), moved shards marked "*",
/// then shards per node.
std::string render_shards(simdjson::dom::element doc);
/// POST /admin/v1/shards/{shard}/move: what moved where.
std::string render_shard_move(simdjson::dom::element doc);
/// GET /admin/v1/actors/{kind}/{id}: one live actor, its timers and its
/// kind-specific summary.
std::string render_actor(simdjson::dom::element doc);

/// A run of consecutive shards owned by one node.
struct shard_run {
  std::uint64_t first = 0;
  std::uint64_t last = 0;
  std::string node;
  bool moved = false; ///< any shard of the run was moved
};
/// Groups a shard map (in any order) into runs of consecutive shard
/// numbers with the same node; a moved shard starts a run of its own so
/// the mark stays precise.
std::vector<shard_run>
shard_runs(std::vector<std::tuple<std::uint64_t, std::string, bool>> shards);

/// One frame of a sync's progress for `--follow`.
struct progress_view {
  std::string state;
  std::uint64_t done = 0;
  std::uint64_t total = 0;
  double rate = -1; ///< events per second; < 0: not known yet
  std::string error;
};
/// "[#####-----]  120/500  24%  initial_sync  35.2/s" with a bar of
/// `bar_width` cells (no bar when 0); no newline.
std::string render_progress(const progress_view& p, std::size_t bar_width);

/// Empty tables with the header rows of the list commands.
table tenants_table();
table events_table();
table audit_table();
table invites_table();
table join_requests_table();
table conflicts_table();
/// Users held by the mass-delete guard (crmsyncctl holds ORG).
table holds_table();

/// Appends one page's "items" to the table; `items` is the array value.
void add_tenant_rows(simdjson::dom::array items, table& out, const people&);
void add_event_rows(simdjson::dom::array items, table& out, const people&);
void add_audit_rows(simdjson::dom::array items, table& out, const people& who);
void add_invite_rows(simdjson::dom::array items, table& out, const people& who);
void add_join_request_rows(simdjson::dom::array items, table& out,
                           const people& who);
void add_conflict_rows(simdjson::dom::array items, table& out,
                       const people& who);

} // namespace crmsync::ctl
