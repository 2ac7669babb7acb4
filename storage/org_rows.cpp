#include "storage/org_rows.hpp"

#include "storage/keys.hpp"

namespace crmsync::storage {

namespace {

/// Where a reminder row names its organization: due rows carry their due
/// time first (reminder_rows.hpp), both carry the target's kind byte.
std::string_view reminder_owner(std::string_view k) {
  if (k.empty())
    return {};
  size_t at = k[0] == 0x01 ? 1 + 8 + 1 : k[0] == 0x02 ? 1 + 1 : k.size();
  return at < k.size() ? k.substr(at, 8) : std::string_view{};
}

} // namespace

std::optional<tenant_id> row_tenant(column c, std::string_view k,
                                    std::string_view v) {
  std::string_view owner;
  switch (c) {
    case column::meta:
      return std::nullopt;
    case column::sessions: {
      if (k.empty() || k[0] != 'w')
        return std::nullopt;
      auto h = keys::parse_page_session(v);
      if (!h || !h->org.valid())
        return std::nullopt;
      return h->org;
    }
    case column::lookup:
      owner = k.empty()     ? std::string_view{}
              : k[0] == 'j' ? k.substr(1, 8)
                            : v.substr(0, 8);
      break;
    case column::reminders:
      owner = reminder_owner(k);
      break;
    default:
      owner = k.substr(0, 8);
  }
  if (owner.size() != 8)
    return std::nullopt;
  return tenant_id{keys::get_be64(owner, 0)};
}

std::vector<column> org_columns() {
  std::vector<column> out;
  for (size_t c = 0; c < column_count; ++c) {
    auto col = static_cast<column>(c);
    if (col != column::meta && col != column::sessions)
      out.push_back(col);
  }
  return out;
}

org_row_cursor::org_row_cursor(const db& store, std::set<uint64_t> orgs,
                               std::vector<column> columns)
    : store_(store), orgs_(std::move(orgs)), columns_(std::move(columns)) {
  for (auto t : orgs_)
    prefixes_.push_back(keys::org(tenant_id{t}));
}

bool keyed_by_org(column c) {
  return c != column::lookup && c != column::reminders && c != column::sessions
         && c != column::meta;
}

bool org_row_cursor::filtered() const {
  return !keyed_by_org(columns_[column_]);
}

caf::error org_row_cursor::next(size_t max_rows, const visit_fn& fn,
                                bool& done) {
  size_t seen = 0;
  while (column_ < columns_.size() && seen < max_rows) {
    auto col = columns_[column_];
    bool whole = filtered();
    if (!whole && prefix_ >= prefixes_.size()) {
      ++column_;
      prefix_ = 0;
      resume_.clear();
      continue;
    }
    std::string begin = resume_;
    std::string end;
    if (!whole) {
      auto& p = prefixes_[prefix_];
      if (begin.empty())
        begin = p;
      end = keys::prefix_end(p);
    }
    bool stopped = false;
    auto err = store_.scan(col, begin, end,
                           [&](std::string_view k, std::string_view v) {
                             if (seen >= max_rows) {
                               // The next step starts at this key.
                               resume_.assign(k.data(), k.size());
                               stopped = true;
                               return false;
                             }
                             if (!whole) {
                               ++seen;
                               fn(col, k, v);
                               return true;
                             }
                             auto t = row_tenant(col, k, v);
                             if (t && orgs_.count(t->value) != 0) {
                               ++seen;
                               fn(col, k, v);
                             }
                             return true;
                           });
    if (err)
      return err;
    if (stopped)
      break;
    // The range is over.
    resume_.clear();
    if (whole)
      ++column_;
    else if (++prefix_ >= prefixes_.size()) {
      ++column_;
      prefix_ = 0;
    }
  }
  done = column_ >= columns_.size();
  return caf::none;
}

caf::error org_row_cursor::all(const visit_fn& fn) {
  bool done = false;
  while (!done)
    if (auto err = next(SIZE_MAX, fn, done))
      return err;
  return caf::none;
}

} // namespace crmsync::storage
