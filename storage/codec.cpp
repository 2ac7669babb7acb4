#include "storage/codec.hpp"

#include <cstdint>

namespace crmsync::storage::codec {

namespace {

// Record kinds: the first byte of every value.
enum class tag : uint8_t {
  org = 1,
  user = 2,
  event = 3,
  mailbox = 4,
  calendar = 5,
};

constexpr uint8_t format_v1 = 1;
constexpr size_t max_string = 1u << 24;
constexpr size_t max_items = 1u << 20;

class out_buf {
public:
  out_buf(tag t) {
    s_ += static_cast<char>(t);
    s_ += static_cast<char>(format_v1);
  }
  void u64(uint64_t v) {
    while (v >= 0x80) {
      s_ += static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    s_ += static_cast<char>(v);
  }
  void i64(int64_t v) {
    u64((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63));
  }
  void b(bool v) {
    s_ += static_cast<char>(v ? 1 : 0);
  }
  void str(std::string_view v) {
    u64(v.size());
    s_.append(v.data(), v.size());
  }
  std::string take() {
    return std::move(s_);
  }

private:
  std::string s_;
};

class in_buf {
public:
  in_buf(std::string_view s) : s_(s) {}
  bool header(tag t) {
    if (s_.size() < 2 || static_cast<uint8_t>(s_[0]) != static_cast<uint8_t>(t)
        || static_cast<uint8_t>(s_[1]) != format_v1)
      return false;
    pos_ = 2;
    return true;
  }
  bool u64(uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= s_.size())
        return false;
      auto c = static_cast<uint8_t>(s_[pos_++]);
      v |= static_cast<uint64_t>(c & 0x7f) << shift;
      if ((c & 0x80) == 0)
        return true;
    }
    return false;
  }
  bool i64(int64_t& v) {
    uint64_t z;
    if (!u64(z))
      return false;
    v = static_cast<int64_t>((z >> 1) ^ (~(z & 1) + 1));
    return true;
  }
  bool b(bool& v) {
    if (pos_ >= s_.size())
      return false;
    auto c = static_cast<uint8_t>(s_[pos_++]);
    if (c > 1)
      return false;
    v = c == 1;
    return true;
  }
  bool str(std::string& v) {
    uint64_t n;
    if (!u64(n) || n > max_string || n > s_.size() - pos_)
      return false;
    v.assign(s_.data() + pos_, n);
    pos_ += n;
    return true;
  }
  template <class Id>
  bool id(Id& x) {
    return u64(x.value);
  }
  template <class Enum>
  bool small_enum(Enum& x, uint8_t max_value) {
    uint64_t v;
    if (!u64(v) || v > max_value)
      return false;
    x = static_cast<Enum>(v);
    return true;
  }
  bool done() const {
    return pos_ == s_.size();
  }

private:
  std::string_view s_;
  size_t pos_ = 0;
};

} // namespace

std::string encode(const org_record& x) {
  out_buf o{tag::org};
  o.u64(x.id.value);
  o.str(x.name);
  o.u64(static_cast<uint8_t>(x.plan));
  o.u64(x.super_admin.value);
  o.u64(x.user_count);
  o.u64(x.event_count);
  o.i64(x.created_ms);
  o.i64(x.modified_ms);
  return o.take();
}

bool decode(std::string_view in, org_record& x) {
  in_buf i{in};
  return i.header(tag::org) && i.id(x.id) && i.str(x.name)
         && i.small_enum(x.plan, 1) && i.id(x.super_admin)
         && i.u64(x.user_count) && i.u64(x.event_count) && i.i64(x.created_ms)
         && i.i64(x.modified_ms) && i.done();
}

std::string encode(const user_record& x) {
  out_buf o{tag::user};
  o.u64(x.id.value);
  o.u64(x.org.value);
  o.str(x.email);
  o.str(x.name);
  o.u64(static_cast<uint8_t>(x.role));
  o.b(x.manage_users);
  o.b(x.super_admin);
  o.str(x.password_hash);
  o.str(x.token_hash);
  o.i64(x.created_ms);
  o.i64(x.modified_ms);
  return o.take();
}

bool decode(std::string_view in, user_record& x) {
  in_buf i{in};
  return i.header(tag::user) && i.id(x.id) && i.id(x.org) && i.str(x.email)
         && i.str(x.name) && i.small_enum(x.role, 1) && i.b(x.manage_users)
         && i.b(x.super_admin) && i.str(x.password_hash) && i.str(x.token_hash)
         && i.i64(x.created_ms) && i.i64(x.modified_ms) && i.done();
}

std::string encode(const event_record& x) {
  out_buf o{tag::event};
  o.u64(x.id.value);
  o.u64(x.org.value);
  o.u64(x.owner.value);
  o.str(x.title);
  o.i64(x.start_ms);
  o.i64(x.end_ms);
  o.b(x.all_day);
  o.str(x.time_zone);
  o.str(x.location);
  o.str(x.description);
  o.u64(x.participants.size());
  for (auto& p : x.participants) {
    o.str(p.email);
    o.str(p.name);
  }
  o.u64(static_cast<uint8_t>(x.origin));
  o.u64(x.version);
  o.i64(x.created_ms);
  o.i64(x.modified_ms);
  return o.take();
}

bool decode(std::string_view in, event_record& x) {
  in_buf i{in};
  uint64_t n = 0;
  if (!(i.header(tag::event) && i.id(x.id) && i.id(x.org) && i.id(x.owner)
        && i.str(x.title) && i.i64(x.start_ms) && i.i64(x.end_ms)
        && i.b(x.all_day) && i.str(x.time_zone) && i.str(x.location)
        && i.str(x.description) && i.u64(n) && n <= max_items))
    return false;
  x.participants.clear();
  x.participants.reserve(n);
  for (uint64_t k = 0; k < n; ++k) {
    participant p;
    if (!i.str(p.email) || !i.str(p.name))
      return false;
    x.participants.push_back(std::move(p));
  }
  return i.small_enum(x.origin, 3) && i.u64(x.version) && i.i64(x.created_ms)
         && i.i64(x.modified_ms) && i.done();
}

std::string encode(const mailbox_status& x) {
  out_buf o{tag::mailbox};
  o.u64(x.org.value);
  o.u64(x.user.value);
  o.b(x.office365_linked);
  o.str(x.office365_user_id);
  o.str(x.office365_tenant_id);
  return o.take();
}

bool decode(std::string_view in, mailbox_status& x) {
  in_buf i{in};
  return i.header(tag::mailbox) && i.id(x.org) && i.id(x.user)
         && i.b(x.office365_linked) && i.str(x.office365_user_id)
         && i.str(x.office365_tenant_id) && i.done();
}

std::string encode(const calendar_status& x) {
  out_buf o{tag::calendar};
  o.u64(x.org.value);
  o.u64(x.user.value);
  o.str(x.state);
  o.u64(x.done);
  o.u64(x.total);
  o.str(x.office365_calendar_id);
  o.str(x.last_error);
  return o.take();
}

bool decode(std::string_view in, calendar_status& x) {
  in_buf i{in};
  return i.header(tag::calendar) && i.id(x.org) && i.id(x.user)
         && i.str(x.state) && i.u64(x.done) && i.u64(x.total)
         && i.str(x.office365_calendar_id) && i.str(x.last_error) && i.done();
}

} // namespace crmsync::storage::codec
