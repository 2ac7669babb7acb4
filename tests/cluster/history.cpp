#include "tests/cluster/history.hpp"

#include <set>
#include <sstream>
#include <utility>

namespace crmsync::test::history {

size_t recorder::invoke_write(int process, std::string label, std::string key,
                              std::optional<std::string> value, bool eventual) {
  operation op;
  op.kind = op_kind::write;
  op.process = process;
  op.label = std::move(label);
  op.key = std::move(key);
  op.value = std::move(value);
  op.eventual = eventual;
  std::lock_guard<std::mutex> guard{mtx_};
  op.invoked = clock_type::now();
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

size_t recorder::invoke_read(int process, std::string label, bool converged) {
  operation op;
  op.kind = op_kind::read;
  op.process = process;
  op.label = std::move(label);
  op.converged = converged;
  std::lock_guard<std::mutex> guard{mtx_};
  op.invoked = clock_type::now();
  ops_.push_back(std::move(op));
  return ops_.size() - 1;
}

void recorder::complete(size_t id, outcome result) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& op = ops_.at(id);
  op.completed = clock_type::now();
  op.result = result;
}

void recorder::complete_read(size_t id, outcome result,
                             std::multimap<std::string, std::string> observed) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& op = ops_.at(id);
  op.completed = clock_type::now();
  op.result = result;
  op.observed = std::move(observed);
}

std::vector<operation> recorder::operations() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return ops_;
}

size_t recorder::writes(outcome result) const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t n = 0;
  for (auto& op : ops_)
    n += op.kind == op_kind::write && op.result == result;
  return n;
}

namespace {

std::string show(const std::optional<std::string>& v) {
  return v ? "'" + *v + "'" : std::string{"absent"};
}

std::string show(const operation& w) {
  std::string s = w.label + " " + show(w.value) + " by client "
                  + std::to_string(w.process);
  switch (w.result) {
    case outcome::ok:
      return s + " (acknowledged)";
    case outcome::failed:
      return s + " (failed)";
    case outcome::unknown:
      return s + " (outcome unknown)";
  }
  return s;
}

/// Checks what `read` saw of `key` against the writes of that key.
void check_key(const operation& read, const std::string& key,
               const std::vector<const operation*>& writes,
               std::vector<violation>& out) {
  auto [first, last] = read.observed.equal_range(key);
  auto seen_count = static_cast<size_t>(std::distance(first, last));
  if (seen_count > 1) {
    std::string values;
    for (auto i = first; i != last; ++i)
      values += (values.empty() ? "'" : ", '") + i->second + "'";
    out.push_back({"duplicate", key,
                   read.label + " saw it " + std::to_string(seen_count)
                       + " times: " + values});
  }
  std::optional<std::string> seen;
  if (seen_count > 0)
    seen = first->second;
  // The writes the read must not miss: acknowledged before it began (and
  // visible to it: an eventual write only to a converged read).
  std::vector<const operation*> obligations;
  for (auto* w : writes)
    if (w->result == outcome::ok && w->completed < read.invoked
        && (!w->eventual || read.converged))
      obligations.push_back(w);
  // What it may see: a write that may have been applied, began before the
  // read ended, and was not overwritten by an obligation that began after
  // it had completed. An unknown write never completed: it may take
  // effect at any time after it began.
  bool allowed = obligations.empty() && !seen; // the initial state
  for (auto* w : writes) {
    if (allowed)
      break;
    if (w->result == outcome::failed || w->invoked >= read.completed)
      continue;
    bool superseded = false;
    for (auto* o : obligations)
      superseded = superseded || (o != w && w->completed < o->invoked);
    if (!superseded && w->value == seen)
      allowed = true;
  }
  if (allowed)
    return;
  bool ever_written = !seen;
  for (auto* w : writes)
    ever_written
        = ever_written || (w->result != outcome::failed && w->value == seen);
  std::string expected;
  for (auto* o : obligations)
    expected += "\n    after " + show(*o);
  if (!ever_written) {
    std::string by;
    for (auto* w : writes)
      if (w->value == seen)
        by = " (written only by " + show(*w) + ")";
    out.push_back({"phantom", key,
                   read.label + " saw " + show(seen)
                       + ", a value no write that may have been applied "
                         "wrote"
                       + by});
    return;
  }
  out.push_back({read.converged ? "lost" : "stale read", key,
                 read.label + " saw " + show(seen) + expected});
}

} // namespace

std::vector<violation> check(const std::vector<operation>& history) {
  std::map<std::string, std::vector<const operation*>> writes;
  for (auto& op : history)
    if (op.kind == op_kind::write)
      writes[op.key].push_back(&op);
  std::vector<violation> out;
  static const std::vector<const operation*> none;
  for (auto& read : history) {
    if (read.kind != op_kind::read || read.result != outcome::ok)
      continue;
    std::set<std::string> keys;
    for (auto& [key, _] : writes)
      keys.insert(key);
    for (auto& [key, _] : read.observed)
      keys.insert(key);
    for (auto& key : keys) {
      auto w = writes.find(key);
      check_key(read, key, w == writes.end() ? none : w->second, out);
    }
  }
  return out;
}

std::string describe(const std::vector<violation>& found, size_t limit) {
  std::ostringstream s;
  s << found.size() << " violation(s)";
  for (size_t i = 0; i < found.size() && i < limit; ++i)
    s << "\n  " << found[i].property << " of '" << found[i].key
      << "': " << found[i].detail;
  if (found.size() > limit)
    s << "\n  …";
  return s.str();
}

} // namespace crmsync::test::history
