#include "storage/reminder_rows.hpp"

#include "protocol/errors.hpp"
#include "storage/keys.hpp"

namespace crmsync::storage::reminder_rows {

namespace {

constexpr char due_tag = 0x01;
constexpr char index_tag = 0x02;
constexpr char row_version = 0x01;
constexpr size_t target_size = 1 + 8 + 8;
constexpr size_t due_key_size = 1 + 8 + target_size + 1;

void put_target(std::string& out, const entity_key& t, reminder_kind kind) {
  out.push_back(static_cast<char>(t.kind));
  keys::put_be64(out, t.tenant.value);
  keys::put_be64(out, t.user.value);
  out.push_back(static_cast<char>(kind));
}

std::string versioned_be64(uint64_t v) {
  std::string out;
  out.push_back(row_version);
  keys::put_be64(out, v);
  return out;
}

std::optional<uint64_t> unversion_be64(std::string_view v) {
  if (v.size() != 9 || v[0] != row_version)
    return std::nullopt;
  return keys::get_be64(v, 1);
}

} // namespace

std::string due_begin(int64_t from_ms) {
  std::string out;
  out.push_back(due_tag);
  keys::put_be64(out, keys::order_signed(from_ms));
  return out;
}

std::string due_end() {
  return std::string(1, index_tag);
}

std::string due_key(const reminder& r) {
  auto out = due_begin(r.due_ms);
  put_target(out, r.target, r.kind);
  return out;
}

std::string index_key(const entity_key& target, reminder_kind kind) {
  std::string out;
  out.push_back(index_tag);
  put_target(out, target, kind);
  return out;
}

std::string encode_due_value(int64_t period_ms) {
  return versioned_be64(static_cast<uint64_t>(period_ms));
}

std::string encode_index_value(int64_t due_ms) {
  return versioned_be64(keys::order_signed(due_ms));
}

std::optional<reminder> decode_due(std::string_view key,
                                   std::string_view value) {
  auto period = unversion_be64(value);
  if (key.size() != due_key_size || key[0] != due_tag || !period)
    return std::nullopt;
  auto kind = static_cast<uint8_t>(key[9]);
  if (kind >= entity_kind_count)
    return std::nullopt;
  reminder r;
  r.due_ms = keys::unorder_signed(keys::get_be64(key, 1));
  r.target.kind = static_cast<entity_kind>(kind);
  r.target.tenant = tenant_id{keys::get_be64(key, 10)};
  r.target.user = user_id{keys::get_be64(key, 18)};
  r.kind = static_cast<reminder_kind>(static_cast<uint8_t>(key[26]));
  r.period_ms = static_cast<int64_t>(*period);
  return r;
}

std::optional<int64_t> decode_index(std::string_view value) {
  auto due = unversion_be64(value);
  if (!due)
    return std::nullopt;
  return keys::unorder_signed(*due);
}

void put(write_batch& b, const reminder& r,
         std::optional<int64_t> replaced_due) {
  if (replaced_due)
    remove(b, r.target, r.kind, *replaced_due);
  b.put(column::reminders, due_key(r), encode_due_value(r.period_ms));
  b.put(column::reminders, index_key(r.target, r.kind),
        encode_index_value(r.due_ms));
}

void remove(write_batch& b, const entity_key& target, reminder_kind kind,
            int64_t due_ms) {
  reminder old;
  old.target = target;
  old.kind = kind;
  old.due_ms = due_ms;
  b.del(column::reminders, due_key(old));
  b.del(column::reminders, index_key(target, kind));
}

caf::error find(const db& d, const entity_key& target, reminder_kind kind,
                std::optional<int64_t>& due_ms) {
  due_ms.reset();
  std::string value;
  bool found = false;
  if (auto err
      = d.get(column::reminders, index_key(target, kind), value, found))
    return err;
  if (!found)
    return caf::none;
  due_ms = decode_index(value);
  if (!due_ms)
    return make_crm_error(crm_errc::storage_failure, "bad_reminder",
                          "malformed reminder index row");
  return caf::none;
}

} // namespace crmsync::storage::reminder_rows
