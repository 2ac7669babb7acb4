#include "common/rate_limit.hpp"

#include <algorithm>
#include <cmath>

namespace crmsync {

// -- token_buckets ------------------------------------------------------------

token_buckets::token_buckets(token_bucket_config cfg, clock_ms now)
    : cfg_(cfg), now_(std::move(now)), table_(cfg.max_keys) {
  if (cfg_.burst < 1)
    cfg_.burst = 1;
  if (!(cfg_.per_minute > 0))
    cfg_.per_minute = 1;
}

std::chrono::milliseconds token_buckets::take(std::string_view key) {
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  // A key seen for the first time (or evicted as the coldest, whose bucket
  // had the longest to refill) starts full.
  auto& b = table_.touch(key, bucket{cfg_.burst, now});
  if (now > b.at_ms) {
    b.tokens = std::min(cfg_.burst, b.tokens
                                        + static_cast<double>(now - b.at_ms)
                                              * cfg_.per_minute / 60000.0);
    b.at_ms = now;
  }
  if (b.tokens >= 1) {
    b.tokens -= 1;
    return std::chrono::milliseconds{0};
  }
  auto ms = std::ceil((1 - b.tokens) * 60000.0 / cfg_.per_minute);
  return std::chrono::milliseconds{
      std::max<int64_t>(1, static_cast<int64_t>(ms))};
}

size_t token_buckets::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return table_.size();
}

// -- failure_backoff ----------------------------------------------------------

failure_backoff::failure_backoff(backoff_config cfg, clock_ms now)
    : cfg_(cfg), now_(std::move(now)), table_(cfg.max_keys) {}

std::chrono::milliseconds failure_backoff::wait_after(uint32_t failures) const {
  if (failures < std::max<uint32_t>(1, cfg_.free_failures))
    return std::chrono::milliseconds{0};
  auto doublings = failures - std::max<uint32_t>(1, cfg_.free_failures);
  auto wait = cfg_.base_wait.count();
  for (uint32_t i = 0; i < doublings && wait < cfg_.max_wait.count(); ++i)
    wait *= 2;
  return std::chrono::milliseconds{std::min(wait, cfg_.max_wait.count())};
}

std::chrono::milliseconds failure_backoff::wait(std::string_view key) {
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  auto* r = table_.find(key);
  if (r == nullptr)
    return std::chrono::milliseconds{0};
  if (now - r->last_ms >= cfg_.forget_after.count()) {
    table_.erase(key);
    return std::chrono::milliseconds{0};
  }
  auto until = r->last_ms + wait_after(r->failures).count();
  return std::chrono::milliseconds{std::max<int64_t>(0, until - now)};
}

uint32_t failure_backoff::failed(std::string_view key) {
  auto now = now_();
  std::lock_guard<std::mutex> guard{mtx_};
  auto& r = table_.touch(key, record{0, now});
  if (now - r.last_ms >= cfg_.forget_after.count())
    r.failures = 0;
  if (r.failures < UINT32_MAX)
    ++r.failures;
  r.last_ms = now;
  return r.failures;
}

void failure_backoff::succeeded(std::string_view key) {
  std::lock_guard<std::mutex> guard{mtx_};
  table_.erase(key);
}

size_t failure_backoff::size() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return table_.size();
}

} // namespace crmsync
