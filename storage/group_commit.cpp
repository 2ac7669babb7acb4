#include "storage/group_commit.hpp"

#include <exception>
#include <set>
#include <string_view>
#include <utility>

#include "protocol/errors.hpp"

namespace crmsync::storage {

namespace {

/// One batch of every batch in `group`, each key once: a later operation
/// on a key replaces an earlier one, as it would in the database.
template <class Pending>
write_batch merge(const std::vector<Pending>& group) {
  // The last operation per (column, key) wins; kept in submission order.
  using key_ref = std::pair<column, std::string_view>;
  std::set<key_ref> seen;
  std::vector<const write_batch::op*> last;
  for (auto g = group.rbegin(); g != group.rend(); ++g)
    for (auto o = g->batch.ops().rbegin(); o != g->batch.ops().rend(); ++o)
      if (seen.insert({o->cf, o->key}).second)
        last.push_back(&*o);
  write_batch out;
  for (auto o = last.rbegin(); o != last.rend(); ++o) {
    if ((*o)->is_delete)
      out.del((*o)->cf, (*o)->key);
    else
      out.put((*o)->cf, (*o)->key, (*o)->value);
  }
  return out;
}

} // namespace

void group_commit::submit(write_batch b, done_fn done) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++stats_.batches;
    queue_.push_back(pending{std::move(b), std::move(done)});
    if (writing_)
      return; // the writing thread takes it with its next write
    writing_ = true;
  }
  while (true) {
    std::vector<pending> mine;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      mine.swap(queue_);
      if (mine.empty()) {
        writing_ = false;
        return;
      }
      ++stats_.writes;
    }
    caf::error err;
    try {
      err = mine.size() == 1 ? db_.write(mine.front().batch)
                             : db_.write(merge(mine));
    } catch (const std::exception& e) {
      err = make_crm_error(crm_errc::storage_failure, "storage_failure",
                           std::string{"write failed: "} + e.what());
    }
    for (auto& p : mine) {
      try {
        p.done(err);
      } catch (...) {
        // One caller's failure must not stop the others' answers nor
        // leave the group without a writer.
      }
    }
  }
}

group_commit::stats group_commit::counts() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

} // namespace crmsync::storage
