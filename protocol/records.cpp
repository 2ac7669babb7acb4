#include "protocol/records.hpp"

#include <algorithm>

#include "common/crypto.hpp"
#include "protocol/office365.hpp"

namespace crmsync {

const char* to_string(edition x) {
  return x == edition::paid ? "paid" : "free";
}

const char* to_string(profile x) {
  return x == profile::administrator ? "administrator" : "standard";
}

const char* to_string(event_origin x) {
  switch (x) {
    case event_origin::individual:
      return "individual";
    case event_origin::imported:
      return "imported";
    case event_origin::mass_update:
      return "mass_update";
    default:
      return "office365";
  }
}

bool from_string(std::string_view s, edition& x) {
  if (s == "free")
    x = edition::free;
  else if (s == "paid")
    x = edition::paid;
  else
    return false;
  return true;
}

bool from_string(std::string_view s, profile& x) {
  if (s == "standard")
    x = profile::standard;
  else if (s == "administrator")
    x = profile::administrator;
  else
    return false;
  return true;
}

void apply_patch(const event_patch& p, event_record& e) {
  if (p.has(event_patch::f_title))
    e.title = p.title;
  if (p.has(event_patch::f_start))
    e.start_ms = p.start_ms;
  if (p.has(event_patch::f_end))
    e.end_ms = p.end_ms;
  if (p.has(event_patch::f_all_day))
    e.all_day = p.all_day;
  if (p.has(event_patch::f_time_zone))
    e.time_zone = p.time_zone;
  if (p.has(event_patch::f_location))
    e.location = p.location;
  if (p.has(event_patch::f_description))
    e.description = p.description;
  if (p.has(event_patch::f_participants))
    e.participants = p.participants;
  if (p.has(event_patch::f_sensitivity))
    e.sensitivity = p.sensitivity;
  if (p.has(event_patch::f_show_as))
    e.show_as = p.show_as;
  if (p.has(event_patch::f_reminder_on))
    e.reminder_on = p.reminder_on;
  if (p.has(event_patch::f_reminder_minutes))
    e.reminder_minutes = p.reminder_minutes;
  if (p.has(event_patch::f_categories))
    e.categories = p.categories;
}

bool valid_sensitivity(std::string_view s) {
  return s == "normal" || s == "personal" || s == "private"
         || s == "confidential";
}

bool valid_show_as(std::string_view s) {
  return s == "free" || s == "tentative" || s == "busy" || s == "oof"
         || s == "workingElsewhere" || s == "unknown";
}

bool is_private_event(const event_record& e) {
  return e.sensitivity == "private" || e.sensitivity == "confidential";
}

void redact_private_event(event_record& e) {
  e.title.clear();
  e.description.clear();
  e.location.clear();
  e.participants.clear();
  e.categories.clear();
}

namespace {

bool is_page_token(std::string_view h) {
  return h.substr(0, page_token_mark.size()) == page_token_mark;
}

std::string_view unmarked(std::string_view h) {
  return is_page_token(h) ? h.substr(page_token_mark.size()) : h;
}

} // namespace

std::string_view unmarked_token(std::string_view stored) {
  return unmarked(stored);
}

namespace {

/// The token made with a user is also a sign-in token when a sign-in
/// issued it (install, an invitation accepted, a join approved): leaving
/// the sign-in list, it must not go on working for good as the account's
/// token.
void drop_primary_if(user_record& u, std::string_view signin_hash) {
  if (!u.token_hash.empty()
      && crypto::equal_secret(unmarked(signin_hash), u.token_hash))
    u.token_hash.clear();
}

} // namespace

bool user_record::has_token_hash(std::string_view hash) const {
  // Every stored hash is compared, so timing does not tell which matched.
  bool match = crypto::equal_secret(token_hash, hash);
  for (auto& h : signin_token_hashes)
    match = crypto::equal_secret(unmarked(h), hash) || match;
  return match;
}

std::string token_id(std::string_view hash) {
  return std::string{unmarked(hash).substr(0, 16)};
}

bool user_record::token_valid(std::string_view hash, int64_t now_ms,
                              int64_t signin_ttl_ms) const {
  // Every stored hash is compared, so timing does not tell which matched.
  bool by_signin = false;
  bool valid = false;
  for (size_t i = 0; i < signin_token_hashes.size(); ++i) {
    bool match = crypto::equal_secret(unmarked(signin_token_hashes[i]), hash);
    by_signin = match || by_signin;
    valid = (match && now_ms < signin_issued(i) + signin_ttl_ms) || valid;
  }
  for (auto& t : api_tokens) {
    bool match = crypto::equal_secret(t.hash, hash);
    valid = (match && (t.expires_ms == 0 || now_ms < t.expires_ms)) || valid;
  }
  bool primary = crypto::equal_secret(token_hash, hash);
  return valid || (primary && !by_signin);
}

void user_record::add_signin_token(std::string hash, bool page, int64_t now_ms,
                                   size_t keep) {
  // Older records have fewer issue times than hashes: fill them in first.
  while (signin_issued_ms.size() < signin_token_hashes.size())
    signin_issued_ms.push_back(modified_ms);
  signin_issued_ms.resize(signin_token_hashes.size());
  signin_token_hashes.push_back(page ? std::string{page_token_mark} + hash
                                     : std::move(hash));
  signin_issued_ms.push_back(now_ms);
  // The oldest of the same kind goes, with its issue time.
  size_t same = 0;
  for (auto& h : signin_token_hashes)
    same += is_page_token(h) == page ? 1 : 0;
  for (size_t i = 0; same > keep && i < signin_token_hashes.size();) {
    if (is_page_token(signin_token_hashes[i]) != page) {
      ++i;
      continue;
    }
    drop_primary_if(*this, signin_token_hashes[i]);
    signin_token_hashes.erase(signin_token_hashes.begin() + i);
    signin_issued_ms.erase(signin_issued_ms.begin() + i);
    --same;
  }
}

bool user_record::remove_signin_token(std::string_view hash) {
  bool held = false;
  for (size_t i = signin_token_hashes.size(); i-- > 0;) {
    if (!crypto::equal_secret(unmarked(signin_token_hashes[i]), hash))
      continue;
    held = true;
    drop_primary_if(*this, signin_token_hashes[i]);
    signin_token_hashes.erase(signin_token_hashes.begin() + i);
    if (i < signin_issued_ms.size())
      signin_issued_ms.erase(signin_issued_ms.begin() + i);
  }
  return held;
}

int64_t user_record::signin_issued(size_t i) const {
  return i < signin_issued_ms.size() ? signin_issued_ms[i] : modified_ms;
}

void user_record::revoke_all_tokens() {
  token_hash.clear();
  signin_token_hashes.clear();
  signin_issued_ms.clear();
  api_tokens.clear();
}

const char* to_string(conflict_policy x) {
  switch (x) {
    case conflict_policy::crm:
      return "crm";
    case conflict_policy::office365:
      return "office365";
    default:
      return "latest";
  }
}

bool from_string(std::string_view s, conflict_policy& x) {
  if (s == "latest")
    x = conflict_policy::latest;
  else if (s == "crm")
    x = conflict_policy::crm;
  else if (s == "office365")
    x = conflict_policy::office365;
  else
    return false;
  return true;
}

const char* to_string(invite_status x) {
  switch (x) {
    case invite_status::pending:
      return "pending";
    case invite_status::accepted:
      return "accepted";
    case invite_status::associated:
      return "associated";
    case invite_status::revoked:
      return "revoked";
    case invite_status::expired:
      return "expired";
    default:
      return "superseded";
  }
}

std::string join_request_page(std::string_view public_url, tenant_id org,
                              uint64_t request) {
  return std::string{public_url} + "/join-requests/" + org.str() + "/"
         + to_hex16(request);
}

bool is_invite_token(std::string_view token) {
  constexpr size_t length = (invite_token_bytes * 4 + 2) / 3;
  if (token.size() != length)
    return false;
  for (char c : token)
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
          || (c >= '0' && c <= '9') || c == '-' || c == '_'))
      return false;
  return true;
}

const char* to_string(join_status x) {
  switch (x) {
    case join_status::approved:
      return "approved";
    case join_status::rejected:
      return "rejected";
    default:
      return "pending";
  }
}

} // namespace crmsync
