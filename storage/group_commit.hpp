// Group commit: small writes that arrive together become one db::write.
//
// The webhook ingress stores a row per notification and answers only once
// it is stored. Written one by one, every notification pays a RocksDB
// write (a WAL record and its write(2), a memtable insert, a write-group
// hand-off between the HTTP threads). Here a caller submits its batch with
// what to do once it is stored: if no write is under way, the caller
// writes everything queued (its own batch and whatever others submit
// meanwhile) in one db::write, calls each submitter's `done` with the
// outcome, and goes on while more is queued; otherwise it only queues and
// returns, and the writing thread finishes its work. So a lone request is
// written at once, and under load each write carries every batch that
// arrived during the previous one. Identical puts in one group are
// written once. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "storage/db.hpp"

namespace crmsync::storage {

class group_commit {
public:
  /// Called once with the outcome of the write that carried the batch
  /// (none: stored), on whichever thread wrote it.
  using done_fn = std::function<void(const caf::error&)>;

  explicit group_commit(db& store) : db_(store) {}

  /// Stores `b` with the next write and then calls `done`; returns at once
  /// when another thread is writing (it calls `done`), else after writing
  /// this and every batch queued meanwhile.
  void submit(write_batch b, done_fn done);

  struct stats {
    uint64_t batches = 0; ///< submitted
    uint64_t writes = 0;  ///< db::write calls they took
  };
  stats counts() const;

private:
  struct pending {
    write_batch batch;
    done_fn done;
  };

  db& db_;
  mutable std::mutex mtx_;
  std::vector<pending> queue_;
  bool writing_ = false;
  stats stats_;
};

} // namespace crmsync::storage
