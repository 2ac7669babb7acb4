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
  invite = 6,
  join = 7,
  audit = 8,
  mail = 9,
  signin = 10,
  session = 11,
  sync_request = 12,
  sync_link = 13,
  sync_change = 14,
  sync_conflict = 15,
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
  void identity(const o365_identity& x) {
    str(x.tenant);
    str(x.user);
    str(x.email);
    str(x.name);
    b(x.is_admin);
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
  bool strings(std::vector<std::string>& v) {
    uint64_t n;
    if (!u64(n) || n > max_items)
      return false;
    v.clear();
    for (uint64_t k = 0; k < n; ++k) {
      std::string one;
      if (!str(one))
        return false;
      v.push_back(std::move(one));
    }
    return true;
  }
  bool api_tokens(std::vector<api_token>& v) {
    uint64_t n;
    if (!u64(n) || n > max_items)
      return false;
    v.clear();
    for (uint64_t k = 0; k < n; ++k) {
      api_token t;
      if (!(str(t.name) && str(t.hash) && i64(t.created_ms)
            && i64(t.expires_ms)))
        return false;
      v.push_back(std::move(t));
    }
    return true;
  }
  bool i64s(std::vector<int64_t>& v) {
    uint64_t n;
    if (!u64(n) || n > max_items)
      return false;
    v.clear();
    for (uint64_t k = 0; k < n; ++k) {
      int64_t t;
      if (!i64(t))
        return false;
      v.push_back(t);
    }
    return true;
  }
  bool identity(o365_identity& x) {
    return str(x.tenant) && str(x.user) && str(x.email) && str(x.name)
           && b(x.is_admin);
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
  o.str(x.o365_tenant);
  o.u64(static_cast<uint8_t>(x.conflicts));
  return o.take();
}

// Fields added after the first release trail the value; a value written
// before them simply ends early and decodes with their defaults.

bool decode(std::string_view in, org_record& x) {
  x = org_record{}; // fields an older value lacks take their defaults
  in_buf i{in};
  return i.header(tag::org) && i.id(x.id) && i.str(x.name)
         && i.small_enum(x.plan, 1) && i.id(x.super_admin)
         && i.u64(x.user_count) && i.u64(x.event_count) && i.i64(x.created_ms)
         && i.i64(x.modified_ms)
         && (i.done()
             || (i.str(x.o365_tenant)
                 && (i.done() || (i.small_enum(x.conflicts, 2) && i.done()))));
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
  o.str(x.o365_tenant);
  o.str(x.o365_user);
  o.u64(x.signin_token_hashes.size());
  for (auto& h : x.signin_token_hashes)
    o.str(h);
  o.b(x.view_all_events);
  o.b(x.deactivated);
  o.u64(x.api_tokens.size());
  for (auto& t : x.api_tokens) {
    o.str(t.name);
    o.str(t.hash);
    o.i64(t.created_ms);
    o.i64(t.expires_ms);
  }
  o.u64(x.signin_issued_ms.size());
  for (auto t : x.signin_issued_ms)
    o.i64(t);
  o.str(x.setup_token_hash);
  o.i64(x.setup_expires_ms);
  return o.take();
}

bool decode(std::string_view in, user_record& x) {
  x = user_record{}; // fields an older value lacks take their defaults
  in_buf i{in};
  if (!(i.header(tag::user) && i.id(x.id) && i.id(x.org) && i.str(x.email)
        && i.str(x.name) && i.small_enum(x.role, 1) && i.b(x.manage_users)
        && i.b(x.super_admin) && i.str(x.password_hash) && i.str(x.token_hash)
        && i.i64(x.created_ms) && i.i64(x.modified_ms)))
    return false;
  // Each later group of fields is optional: a value ends after any group.
  if (i.done())
    return true;
  if (!(i.str(x.o365_tenant) && i.str(x.o365_user)
        && i.strings(x.signin_token_hashes)))
    return false;
  if (i.done())
    return true;
  if (!i.b(x.view_all_events))
    return false;
  if (i.done())
    return true;
  if (!i.b(x.deactivated))
    return false;
  if (i.done())
    return true;
  if (!(i.api_tokens(x.api_tokens) && i.i64s(x.signin_issued_ms)))
    return false;
  if (i.done())
    return true;
  return i.str(x.setup_token_hash) && i.i64(x.setup_expires_ms) && i.done();
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
  o.str(x.sensitivity);
  o.str(x.show_as);
  o.b(x.reminder_on);
  o.i64(x.reminder_minutes);
  o.u64(x.categories.size());
  for (auto& c : x.categories)
    o.str(c);
  return o.take();
}

bool decode(std::string_view in, event_record& x) {
  x = event_record{}; // fields an older value lacks take their defaults
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
  // Values written before sensitivity, showAs, reminders and categories
  // end here.
  return i.small_enum(x.origin, 3) && i.u64(x.version) && i.i64(x.created_ms)
         && i.i64(x.modified_ms)
         && (i.done()
             || (i.str(x.sensitivity) && i.str(x.show_as) && i.b(x.reminder_on)
                 && i.i64(x.reminder_minutes) && i.strings(x.categories)
                 && i.done()));
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

// A calendar state is stored by its name (to_string), as it always was.
bool read_state(in_buf& i, calendar_state& x) {
  std::string name;
  return i.str(name) && from_string(name, x);
}

std::string encode(const calendar_status& x) {
  out_buf o{tag::calendar};
  o.u64(x.org.value);
  o.u64(x.user.value);
  o.str(to_string(x.state));
  o.u64(x.done);
  o.u64(x.total);
  o.str(x.office365_calendar_id);
  o.str(x.last_error);
  o.str(x.delta_link);
  o.str(x.subscription_id);
  o.i64(x.subscription_expires_ms);
  o.str(x.client_state);
  o.i64(x.last_sync_ms);
  for (auto n : {x.out_created, x.out_updated, x.out_deleted, x.in_created,
                 x.in_updated, x.in_deleted})
    o.u64(n);
  o.i64(x.deletes_window_ms);
  o.u64(x.deletes_in_window);
  o.u64(x.skipped.size());
  for (auto& k : x.skipped) {
    o.u64(k.event.value);
    o.u64(k.version);
    o.i64(k.at_ms);
    o.i64(k.status);
    o.str(k.code);
    o.str(k.message);
  }
  o.str(x.resume_state);
  o.str(x.alert);
  const auto& f = x.last_failure;
  o.i64(f.at_ms);
  o.i64(f.status);
  for (auto* text : {&f.code, &f.client_request_id, &f.request_id, &f.date})
    o.str(*text);
  return o.take();
}

namespace {

bool decode_skipped(in_buf& i, std::vector<skipped_event>& out) {
  uint64_t n = 0;
  if (!i.u64(n) || n > max_items)
    return false;
  for (uint64_t k = 0; k < n; ++k) {
    skipped_event e;
    if (!i.id(e.event) || !i.u64(e.version) || !i.i64(e.at_ms)
        || !i.i64(e.status) || !i.str(e.code) || !i.str(e.message))
      return false;
    out.push_back(std::move(e));
  }
  return true;
}

bool decode_failure(in_buf& i, graph_failure& f) {
  return i.i64(f.at_ms) && i.i64(f.status) && i.str(f.code)
         && i.str(f.client_request_id) && i.str(f.request_id) && i.str(f.date);
}

} // namespace

bool decode(std::string_view in, calendar_status& x) {
  auto org = x.org;
  auto user = x.user;
  x = calendar_status{};
  x.org = org;
  x.user = user;
  in_buf i{in};
  return i.header(tag::calendar) && i.id(x.org) && i.id(x.user)
         && read_state(i, x.state) && i.u64(x.done) && i.u64(x.total)
         && i.str(x.office365_calendar_id) && i.str(x.last_error)
         && (i.done()
             || (i.str(x.delta_link) && i.str(x.subscription_id)
                 && i.i64(x.subscription_expires_ms) && i.str(x.client_state)
                 && i.i64(x.last_sync_ms) && i.u64(x.out_created)
                 && i.u64(x.out_updated) && i.u64(x.out_deleted)
                 && i.u64(x.in_created) && i.u64(x.in_updated)
                 && i.u64(x.in_deleted)
                 && (i.done()
                     || (i.i64(x.deletes_window_ms)
                         && i.u64(x.deletes_in_window)
                         && (i.done()
                             || (decode_skipped(i, x.skipped)
                                 && i.str(x.resume_state) && i.str(x.alert)
                                 && (i.done()
                                     || (decode_failure(i, x.last_failure)
                                         && i.done()))))))));
}

std::string encode(const invite_record& x) {
  out_buf o{tag::invite};
  o.u64(x.id);
  o.u64(x.org.value);
  o.str(x.o365_user);
  o.str(x.email);
  o.str(x.name);
  o.u64(x.inviter.value);
  o.str(x.token_hash);
  o.u64(static_cast<uint8_t>(x.status));
  o.u64(x.member.value);
  o.i64(x.created_ms);
  o.i64(x.expires_ms);
  o.i64(x.resolved_ms);
  return o.take();
}

bool decode(std::string_view in, invite_record& x) {
  in_buf i{in};
  return i.header(tag::invite) && i.u64(x.id) && i.id(x.org)
         && i.str(x.o365_user) && i.str(x.email) && i.str(x.name)
         && i.id(x.inviter) && i.str(x.token_hash) && i.small_enum(x.status, 4)
         && i.id(x.member) && i.i64(x.created_ms) && i.i64(x.expires_ms)
         && i.i64(x.resolved_ms) && i.done();
}

std::string encode(const join_request_record& x) {
  out_buf o{tag::join};
  o.u64(x.id);
  o.u64(x.org.value);
  o.str(x.o365_user);
  o.str(x.email);
  o.str(x.name);
  o.u64(static_cast<uint8_t>(x.status));
  o.u64(x.approved_by.value);
  o.u64(x.member.value);
  o.i64(x.created_ms);
  o.i64(x.resolved_ms);
  return o.take();
}

bool decode(std::string_view in, join_request_record& x) {
  in_buf i{in};
  return i.header(tag::join) && i.u64(x.id) && i.id(x.org) && i.str(x.o365_user)
         && i.str(x.email) && i.str(x.name) && i.small_enum(x.status, 2)
         && i.id(x.approved_by) && i.id(x.member) && i.i64(x.created_ms)
         && i.i64(x.resolved_ms) && i.done();
}

std::string encode(const audit_entry& x) {
  out_buf o{tag::audit};
  o.u64(x.org.value);
  o.i64(x.at_ms);
  o.u64(x.seq);
  o.str(x.actor);
  o.str(x.action);
  o.str(x.detail);
  o.str(x.request_id);
  return o.take();
}

bool decode(std::string_view in, audit_entry& x) {
  in_buf i{in};
  // Entries written before request ids end after the detail.
  return i.header(tag::audit) && i.id(x.org) && i.i64(x.at_ms) && i.u64(x.seq)
         && i.str(x.actor) && i.str(x.action) && i.str(x.detail)
         && (i.done() || (i.str(x.request_id) && i.done()));
}

std::string encode(const mail_item& x) {
  out_buf o{tag::mail};
  o.u64(x.id);
  o.u64(x.org.value);
  o.str(x.o365_tenant);
  o.str(x.sender);
  o.str(x.to);
  o.str(x.subject);
  o.str(x.html);
  o.u64(x.attempts);
  o.str(x.last_error);
  o.b(x.failed);
  o.i64(x.created_ms);
  o.i64(x.next_attempt_ms);
  return o.take();
}

bool decode(std::string_view in, mail_item& x) {
  in_buf i{in};
  uint64_t attempts = 0;
  bool ok = i.header(tag::mail) && i.u64(x.id) && i.id(x.org)
            && i.str(x.o365_tenant) && i.str(x.sender) && i.str(x.to)
            && i.str(x.subject) && i.str(x.html) && i.u64(attempts)
            && attempts <= UINT32_MAX && i.str(x.last_error) && i.b(x.failed)
            && i.i64(x.created_ms)
            && (i.done() || (i.i64(x.next_attempt_ms) && i.done()));
  x.attempts = static_cast<uint32_t>(attempts);
  return ok;
}

std::string encode(const signin_state_record& x) {
  out_buf o{tag::signin};
  o.str(x.purpose);
  o.str(x.nonce);
  o.str(x.o365_tenant);
  o.identity(x.who);
  o.i64(x.expires_ms);
  o.str(x.invite_token);
  o.str(x.browser);
  return o.take();
}

bool decode(std::string_view in, signin_state_record& x) {
  in_buf i{in};
  return i.header(tag::signin) && i.str(x.purpose) && i.str(x.nonce)
         && i.str(x.o365_tenant) && i.identity(x.who) && i.i64(x.expires_ms)
         && i.str(x.invite_token)
         && (i.done() || (i.str(x.browser) && i.done()));
}

std::string encode(const o365_session_record& x) {
  out_buf o{tag::session};
  o.identity(x.who);
  o.i64(x.expires_ms);
  return o.take();
}

bool decode(std::string_view in, o365_session_record& x) {
  in_buf i{in};
  return i.header(tag::session) && i.identity(x.who) && i.i64(x.expires_ms)
         && i.done();
}

std::string encode(const sync_request& x) {
  out_buf o{tag::sync_request};
  o.b(x.enabled);
  o.i64(x.at_ms);
  return o.take();
}

bool decode(std::string_view in, sync_request& x) {
  in_buf i{in};
  return i.header(tag::sync_request) && i.b(x.enabled) && i.i64(x.at_ms)
         && i.done();
}

std::string encode(const sync_link& x) {
  out_buf o{tag::sync_link};
  o.u64(x.event.value);
  o.str(x.graph_id);
  o.str(x.change_key);
  o.u64(x.crm_version);
  return o.take();
}

bool decode(std::string_view in, sync_link& x) {
  in_buf i{in};
  return i.header(tag::sync_link) && i.id(x.event) && i.str(x.graph_id)
         && i.str(x.change_key) && i.u64(x.crm_version) && i.done();
}

std::string encode(const sync_change& x) {
  out_buf o{tag::sync_change};
  o.u64(x.event.value);
  o.b(x.deleted);
  o.i64(x.at_ms);
  return o.take();
}

bool decode(std::string_view in, sync_change& x) {
  in_buf i{in};
  return i.header(tag::sync_change) && i.id(x.event) && i.b(x.deleted)
         && i.i64(x.at_ms) && i.done();
}

std::string encode(const sync_conflict& x) {
  out_buf o{tag::sync_conflict};
  o.u64(x.user.value);
  o.u64(x.event.value);
  o.str(x.graph_id);
  o.i64(x.at_ms);
  o.str(x.policy);
  o.str(x.winner);
  o.str(x.kept);
  o.str(x.lost);
  return o.take();
}

bool decode(std::string_view in, sync_conflict& x) {
  in_buf i{in};
  return i.header(tag::sync_conflict) && i.id(x.user) && i.id(x.event)
         && i.str(x.graph_id) && i.i64(x.at_ms) && i.str(x.policy)
         && i.str(x.winner) && i.str(x.kept) && i.str(x.lost) && i.done();
}

} // namespace crmsync::storage::codec
