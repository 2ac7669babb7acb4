// How long a calendar or mailbox activation stays in memory once idle,
// adapted to how soon the entity came back after its last passivation
// (ADR 0006): one that comes back within the idle time it had (it would
// still have been in memory with twice that) gets twice that idle time,
// from `base` (--calendar-idle) up to `cap` (--idle-timeout); one that
// stayed away longer starts again at `base`. A user whose calendar is
// touched every few seconds then stops costing an activation and a
// passivation per change, while a user who is truly idle (a reconciliation
// every few minutes) leaves memory after `base` as before.
//
// Owned by the directory (its actor state): not thread-safe. A passivated
// entity is remembered only for the idle time it had (forget_old), so what
// it holds is bounded by the passivations of the last few idle times, not
// by the users.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <map>
#include <utility>

#include <caf/actor_clock.hpp>

#include "protocol/messages.hpp"

namespace crmsync::actors {

class idle_ladder {
public:
  using time_point = caf::actor_clock::time_point;
  using millis = std::chrono::milliseconds;

  idle_ladder(millis base, millis cap)
      : base_(std::max(base, millis{1})), cap_(std::max(cap, base_)) {
    while (top_ < 62 && (base_.count() << top_) < cap_.count())
      ++top_;
  }

  /// `key` is activated at `now`: the rung of this activation (0: `base`).
  uint8_t activated(const entity_key& key, time_point now) {
    auto i = passivated_.find(key);
    if (i == passivated_.end())
      return 0;
    auto [until, rung] = i->second;
    passivated_.erase(i);
    if (now >= until)
      return 0; // away longer than its idle time: back to the default
    return static_cast<uint8_t>(std::min(rung + 1, top_));
  }

  /// `key`, activated on `rung`, was passivated at `now`.
  void passivated(const entity_key& key, uint8_t rung, time_point now) {
    auto until = now + idle_after(rung);
    passivated_[key] = {until, rung};
    expiries_.emplace(until, key);
  }

  /// The idle time of an activation on `rung`.
  millis idle_after(uint8_t rung) const {
    return std::min(millis{base_.count() << std::min<int>(rung, top_)}, cap_);
  }

  /// Forgets the passivations whose entities would start at `base` again.
  void forget_old(time_point now) {
    while (!expiries_.empty() && expiries_.begin()->first <= now) {
      auto i = passivated_.find(expiries_.begin()->second);
      // Only this passivation's entry: not one of a later passivation.
      if (i != passivated_.end() && i->second.first == expiries_.begin()->first)
        passivated_.erase(i);
      expiries_.erase(expiries_.begin());
    }
  }

  /// Passivated entities remembered.
  size_t remembered() const {
    return passivated_.size();
  }

private:
  millis base_;
  millis cap_;
  /// The lowest rung whose idle time reaches `cap`.
  int top_ = 0;
  /// key -> (remembered until, rung of the activation passivated)
  std::map<entity_key, std::pair<time_point, int>> passivated_;
  std::multimap<time_point, entity_key> expiries_;
};

} // namespace crmsync::actors
