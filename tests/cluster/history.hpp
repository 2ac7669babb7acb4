// A history of the operations a test's clients issued against a cluster,
// and a checker over it in the spirit of Jepsen's: every write and read is
// recorded with its invocation and completion times and its outcome (ok,
// failed: certainly not applied, unknown: a timeout or a 503 after the
// write may have been stored), and check() then looks for
//   - a lost write: a state read once everything settled (a "converged"
//     read) that misses an acknowledged write, or holds an older value;
//   - a duplicate: a read that sees one key more than once (an event
//     created once listed twice, an Office 365 event twice in a mailbox);
//   - a stale read: a read that began after a write was acknowledged and
//     does not see it (or something newer);
//   - a phantom: a read that sees a value no write that may have been
//     applied wrote (a refused write that became visible).
// The model is one register per key (an event's title): a write sets the
// key's value or deletes it (no value). Values must be distinct per key so
// that a read tells which write it saw. A write may be `eventual` (made on
// the other side of a sync, e.g. in Outlook): ordinary reads need not see
// it, converged reads must.
//
// The check is sound for linearizable registers (it reports nothing a
// linearizable system could produce) but not complete (it looks at each
// read alone, not for one order that explains all of them).
//
// A recorder is shared by a test's client threads (it locks); check() is
// a pure function of a history.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace crmsync::test::history {

using clock_type = std::chrono::steady_clock;

enum class outcome { ok, failed, unknown };

enum class op_kind { write, read };

struct operation {
  op_kind kind = op_kind::write;
  /// Who issued it (a client thread), for messages.
  int process = 0;
  /// What it was ("create", "outlook update", "read via n2"), for messages.
  std::string label;
  clock_type::time_point invoked{};
  /// Unset (the largest time point) while it has not completed.
  clock_type::time_point completed = clock_type::time_point::max();
  outcome result = outcome::unknown;

  // A write:
  std::string key;
  /// The key's new value; none for a delete.
  std::optional<std::string> value;
  /// Made on the other side of a sync: reads must see it only once the
  /// system converged.
  bool eventual = false;

  // A read: every key it saw with its value (a key seen twice is there
  // twice); only reads that completed ok are checked.
  std::multimap<std::string, std::string> observed;
  /// Read after everything settled: every acknowledged write, eventual or
  /// not, must be there.
  bool converged = false;
};

/// Records operations from any thread.
class recorder {
public:
  /// Starts a write now; returns its id for complete().
  size_t invoke_write(int process, std::string label, std::string key,
                      std::optional<std::string> value, bool eventual = false);
  /// Starts a read now.
  size_t invoke_read(int process, std::string label, bool converged = false);
  /// Completes an operation now.
  void complete(size_t id, outcome result);
  /// Completes a read now with what it saw.
  void complete_read(size_t id, outcome result,
                     std::multimap<std::string, std::string> observed);
  /// A copy of everything recorded so far.
  std::vector<operation> operations() const;
  /// How many writes ended with `result` (for reports).
  size_t writes(outcome result) const;

private:
  mutable std::mutex mtx_;
  std::vector<operation> ops_;
};

struct violation {
  /// "lost", "duplicate", "stale read" or "phantom".
  std::string property;
  std::string key;
  std::string detail;
};

/// Every violation of the properties above in `history`.
std::vector<violation> check(const std::vector<operation>& history);

/// One line per violation (at most `limit`), for a test's failure message.
std::string describe(const std::vector<violation>& found, size_t limit = 20);

} // namespace crmsync::test::history
