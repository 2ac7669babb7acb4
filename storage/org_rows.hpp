// Every stored row of a set of organizations, visited in bounded steps.
//
// One walker serves everything that handles an organization's rows as a
// whole: a shard move (cluster/node.cpp copies them), an export (streamed
// a page at a time) and deleting an organization. A row belongs to an
// organization when (storage/keys.hpp): its key starts with the org id (the
// tenant-scoped families); in `lookup`, its value does (join requests: the
// key, after its tag); in `reminders`, its target names it; in `sessions`,
// a CRM user's page session belongs to the organization its value names
// (keys::page_session_value, t15-sessions). Sign-in states, Office 365
// sign-in sessions, the page sessions of people who are no CRM user and
// `meta` belong to none.
//
// Not a snapshot: rows written meanwhile may or may not be seen. Rows may
// be deleted between steps (the walk resumes after the last key it saw).
// A cursor is used by one thread at a time.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <caf/error.hpp>

#include "protocol/ids.hpp"
#include "storage/db.hpp"

namespace crmsync::storage {

/// The organization a row of `c` belongs to, or nullopt (see above).
std::optional<tenant_id> row_tenant(column c, std::string_view key,
                                    std::string_view value);

/// The column families that hold organizations' rows (all but meta and
/// sessions: an organization's page sessions are its rows for replication
/// and moves, but never part of an export).
std::vector<column> org_columns();

/// Whether every row of `c` that belongs to an organization starts with
/// its id (false: the family is scanned whole and filtered by row_tenant).
bool keyed_by_org(column c);

class org_row_cursor {
public:
  using visit_fn
      = std::function<void(column, std::string_view key, std::string_view)>;

  /// Walks the rows of `orgs` in `columns`, in that order.
  org_row_cursor(const db& store, std::set<uint64_t> orgs,
                 std::vector<column> columns);

  /// Visits up to `max_rows` more rows; `done` is true once every row was
  /// visited.
  caf::error next(size_t max_rows, const visit_fn& fn, bool& done);

  /// Visits every remaining row.
  caf::error all(const visit_fn& fn);

private:
  /// Whether the current family is scanned whole and filtered (its rows
  /// are not keyed by organization).
  bool filtered() const;

  const db& store_;
  std::set<uint64_t> orgs_;
  std::vector<std::string> prefixes_;
  std::vector<column> columns_;
  size_t column_ = 0;  ///< index into columns_
  size_t prefix_ = 0;  ///< index into prefixes_ (tenant-keyed families)
  std::string resume_; ///< next key to read from ("" : the range's start)
};

} // namespace crmsync::storage
