// Strong identifier types for tenants, users and events.
//
// Ids are random 64-bit values, shown to clients as 16 lower-case hex
// digits. Value types; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <caf/meta/type_name.hpp>

namespace crmsync {

/// Renders v as exactly 16 lower-case hex digits.
std::string to_hex16(uint64_t v);

/// Parses exactly 16 hex digits (either case).
std::optional<uint64_t> parse_hex16(std::string_view s);

template <class Tag>
struct strong_id {
  uint64_t value = 0;

  constexpr strong_id() = default;
  constexpr explicit strong_id(uint64_t v) : value(v) {}

  bool valid() const {
    return value != 0;
  }
  std::string str() const {
    return to_hex16(value);
  }
  static std::optional<strong_id> parse(std::string_view s) {
    auto v = parse_hex16(s);
    if (!v || *v == 0)
      return std::nullopt;
    return strong_id{*v};
  }
  friend bool operator==(strong_id a, strong_id b) {
    return a.value == b.value;
  }
  friend bool operator!=(strong_id a, strong_id b) {
    return a.value != b.value;
  }
  friend bool operator<(strong_id a, strong_id b) {
    return a.value < b.value;
  }
  template <class Inspector>
  friend typename Inspector::result_type inspect(Inspector& f, strong_id& x) {
    return f(caf::meta::type_name(Tag::name), x.value);
  }
};

struct tenant_tag {
  static constexpr const char* name = "crmsync::tenant_id";
};
struct user_tag {
  static constexpr const char* name = "crmsync::user_id";
};
struct event_tag {
  static constexpr const char* name = "crmsync::event_id";
};

/// One CRM organization (and its tenant actor).
using tenant_id = strong_id<tenant_tag>;
/// One CRM user, unique across the whole service.
using user_id = strong_id<user_tag>;
/// One calendar event, unique within its tenant.
using event_id = strong_id<event_tag>;

} // namespace crmsync

namespace std {
template <class Tag>
struct hash<crmsync::strong_id<Tag>> {
  size_t operator()(crmsync::strong_id<Tag> x) const noexcept {
    return std::hash<uint64_t>{}(x.value);
  }
};
} // namespace std
