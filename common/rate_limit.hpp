// Rate limits keyed by a string (a client address, an account): token
// buckets for how often something may start, and failure counters with
// exponential backoff for how often something may go wrong.
//
// Both tables are bounded: at `max_keys` entries the least recently used
// key is evicted, so an attack from many addresses costs at most that much
// memory and can only push out the coldest keys (an evicted bucket was the
// least recently used; an evicted failure count is forgotten). Time comes
// from an injected clock in milliseconds. Thread-safe (one mutex each).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace crmsync {

/// Milliseconds of some monotonic or wall clock.
using clock_ms = std::function<int64_t()>;

namespace detail {

/// A map with a size cap that evicts its least recently touched entry.
/// Not thread-safe: its owner locks.
template <class Value>
class lru_table {
public:
  explicit lru_table(size_t max_keys) : max_(max_keys < 1 ? 1 : max_keys) {}

  /// The entry of `key`, or nullptr; a found entry becomes the newest.
  Value* find(std::string_view key) {
    auto i = index_.find(std::string{key});
    if (i == index_.end())
      return nullptr;
    order_.splice(order_.begin(), order_, i->second);
    return &i->second->second;
  }

  /// The entry of `key`, made from `fresh` (evicting the oldest entry at
  /// the cap) when absent; it becomes the newest either way.
  Value& touch(std::string_view key, const Value& fresh) {
    if (auto* v = find(key))
      return *v;
    if (index_.size() >= max_) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    order_.emplace_front(std::string{key}, fresh);
    index_.emplace(order_.front().first, order_.begin());
    return order_.front().second;
  }

  void erase(std::string_view key) {
    auto i = index_.find(std::string{key});
    if (i == index_.end())
      return;
    order_.erase(i->second);
    index_.erase(i);
  }

  size_t size() const {
    return index_.size();
  }

private:
  using entry = std::pair<std::string, Value>;
  size_t max_;
  std::list<entry> order_; ///< newest first
  std::unordered_map<std::string, typename std::list<entry>::iterator> index_;
};

} // namespace detail

struct token_bucket_config {
  /// Tokens a key starts with: how many starts may come at once.
  double burst = 20;
  /// Tokens added per minute, up to `burst`. Must be > 0.
  double per_minute = 20;
  size_t max_keys = 100000;
};

/// A token bucket per key: each start takes a token.
class token_buckets {
public:
  token_buckets(token_bucket_config cfg, clock_ms now);

  /// Takes a token of `key`: zero when there was one, otherwise how long
  /// until there is (and nothing is taken).
  std::chrono::milliseconds take(std::string_view key);

  /// Keys tracked now (at most max_keys).
  size_t size() const;

private:
  struct bucket {
    double tokens = 0;
    int64_t at_ms = 0;
  };
  token_bucket_config cfg_;
  clock_ms now_;
  mutable std::mutex mtx_;
  detail::lru_table<bucket> table_;
};

struct backoff_config {
  /// Failures in a row before the key has to wait (at least 1): after
  /// that many, the next attempt waits `base_wait`, and the wait doubles
  /// with every further failure, up to `max_wait`.
  uint32_t free_failures = 5;
  std::chrono::milliseconds base_wait{std::chrono::seconds(1)};
  std::chrono::milliseconds max_wait{std::chrono::minutes(15)};
  /// A key whose last failure is older than this starts afresh.
  std::chrono::milliseconds forget_after{std::chrono::hours(1)};
  size_t max_keys = 100000;
};

/// Consecutive failures per key with exponential backoff.
class failure_backoff {
public:
  failure_backoff(backoff_config cfg, clock_ms now);

  /// How long `key` must still wait before its next attempt (zero: now).
  std::chrono::milliseconds wait(std::string_view key);

  /// Counts a failure of `key`; returns its consecutive failures so far.
  uint32_t failed(std::string_view key);

  /// A success: the key's failures are forgotten.
  void succeeded(std::string_view key);

  /// The wait that `failures` consecutive failures impose after the last.
  std::chrono::milliseconds wait_after(uint32_t failures) const;

  size_t size() const;

private:
  struct record {
    uint32_t failures = 0;
    int64_t last_ms = 0;
  };
  backoff_config cfg_;
  clock_ms now_;
  mutable std::mutex mtx_;
  detail::lru_table<record> table_;
};

} // namespace crmsync
